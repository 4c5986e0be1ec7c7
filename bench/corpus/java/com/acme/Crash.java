package com.acme;

import com.acme.orders.Order;
import com.acme.orders.OrderService;
import com.acme.payments.GatewayClient;
import java.net.ServerSocket;

/** java com.acme.Crash CASE VALUE: runs one bug and prints its stack trace as a logger would. */
public class Crash {
    public static void main(String[] args) throws Exception {
        String kind = args[0];
        long n = Long.parseLong(args[1]);
        if (kind.equals("npe_thread")) {
            Thread t = new Thread(() -> new OrderService().customerEmail(new Order(n, null)), "order-worker-" + (n % 8));
            t.start();
            t.join();
            return;
        }
        try {
            run(kind, n);
        } catch (Exception e) {
            e.printStackTrace();
        }
    }

    static void run(String kind, long n) throws Exception {
        OrderService orders = new OrderService();
        GatewayClient gateway = new GatewayClient();
        switch (kind) {
            case "caused_by" -> orders.save(n);
            case "number_format" -> orders.quantity(n + "x");
            case "pool_exhausted" -> new com.acme.orders.OrderRepository().find(n);
            case "conn_refused" -> gateway.charge(closedPort(), n);
            case "timeout" -> {
                try (ServerSocket silent = new ServerSocket(0)) {
                    gateway.status(silent.getLocalPort());
                }
            }
            default -> throw new IllegalArgumentException(kind);
        }
    }

    static int closedPort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
