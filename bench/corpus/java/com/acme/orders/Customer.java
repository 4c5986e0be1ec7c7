package com.acme.orders;

public record Customer(String email) {}
