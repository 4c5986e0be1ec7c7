# ruby crash.rb CASE VALUE: runs one bug; ruby prints the uncaught error to stderr.
require "socket"
require_relative "mailer"
require_relative "reports"
require_relative "settings"
require_relative "gateway"

def closed_port
  server = TCPServer.new("127.0.0.1", 0)
  port = server.addr[1]
  server.close
  port
end

kind, value = ARGV
n = value.to_i
case kind
when "no_method" then Mailer.new.deliver_receipt(n)
when "zero_division" then Reports.daily([n, n + 1])
when "key_error" then Settings.currency_for("t#{n}")
when "conn_refused" then Gateway.charge(closed_port, n)
end
