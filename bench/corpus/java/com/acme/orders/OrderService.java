package com.acme.orders;

import com.acme.db.JdbcTemplate;

public class OrderService {
    private final JdbcTemplate jdbc = new JdbcTemplate();

    public String customerEmail(Order order) {
        return order.customer().email().toLowerCase();
    }

    public void save(long id) {
        try {
            jdbc.update("INSERT INTO orders (id, state) VALUES (?, 'new')", id);
        } catch (RuntimeException e) {
            throw new OrderException("could not save order " + id, e);
        }
    }

    public int quantity(String raw) {
        return Integer.parseInt(raw.trim());
    }
}
