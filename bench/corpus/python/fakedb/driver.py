from fakedb.errors import OperationalError


class Cursor:
    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql, params):
        self.conn.server_check(sql, params)


class Connection:
    def cursor(self):
        return Cursor(self)

    def server_check(self, sql, params):
        if sql.startswith("UPDATE"):
            raise OperationalError(
                f"could not serialize access due to concurrent update (order_id={params[0]})"
            )
