package com.acme.payments;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;

public class GatewayClient {
    public int charge(int port, long amount) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
            return s.getInputStream().read();
        } catch (IOException e) {
            throw new PaymentGatewayException("payment gateway unreachable at 127.0.0.1:" + port, e);
        }
    }

    public int status(int port) throws IOException {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
            s.setSoTimeout(200);
            InputStream in = s.getInputStream();
            return in.read();
        }
    }
}
