USERS = {1: {"email": "a@example.test"}}


class User:
    def __init__(self, email):
        self.email = email


def find_user(user_id):
    row = USERS.get(user_id)
    return User(row["email"]) if row else None


def notify(user_id, text):
    user = find_user(user_id)
    return f"to={user.email} text={text}"
