package com.acme.pool;

import java.sql.Connection;
import java.sql.SQLTransientConnectionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/** A connection-pool look-alike (as HikariCP would be): every connection is checked out. */
public class ConnectionPool {
    private final String name;
    private final Semaphore available = new Semaphore(0);

    public ConnectionPool(String name) {
        this.name = name;
    }

    public Connection getConnection(long timeoutMs) throws SQLTransientConnectionException {
        try {
            if (!available.tryAcquire(timeoutMs, TimeUnit.MILLISECONDS)) {
                throw new SQLTransientConnectionException(
                    name + " - Connection is not available, request timed out after " + timeoutMs + "ms.");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return null;
    }
}
