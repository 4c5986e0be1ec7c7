require "socket"

# Talks to the payment gateway over a raw socket.
module Gateway
  def self.charge(port, amount)
    sock = TCPSocket.new("127.0.0.1", port)
    sock.write("CHARGE #{amount}\n")
    sock.gets
  end
end
