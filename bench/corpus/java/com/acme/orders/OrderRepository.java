package com.acme.orders;

import com.acme.db.DataAccessException;
import com.acme.pool.ConnectionPool;
import java.sql.SQLException;

public class OrderRepository {
    private final ConnectionPool pool = new ConnectionPool("orders-pool");

    public Order find(long id) {
        try {
            pool.getConnection(250);
            return new Order(id, null);
        } catch (SQLException e) {
            throw new DataAccessException("Failed to obtain JDBC Connection", e);
        }
    }
}
