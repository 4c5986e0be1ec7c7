package com.acme.orders;

public class OrderException extends RuntimeException {
    public OrderException(String message, Throwable cause) {
        super(message, cause);
    }
}
