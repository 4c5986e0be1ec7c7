from fakedb.driver import Connection


class RepositoryError(Exception):
    pass


def save_order(order_id):
    cur = Connection().cursor()
    try:
        cur.execute("UPDATE orders SET state = 'paid' WHERE id = %s", (order_id,))
    except Exception as e:
        raise RepositoryError(f"saving order {order_id} failed") from e
