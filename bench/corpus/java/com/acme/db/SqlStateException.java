package com.acme.db;

public class SqlStateException extends Exception {
    public SqlStateException(String message) {
        super(message);
    }
}
