# Mailer with a nil bug: a missing user is not handled.
class Mailer
  User = Struct.new(:email)
  USERS = { 1 => User.new("a@example.test") }

  def deliver_receipt(user_id)
    user = USERS[user_id]
    "to=#{user.email}"
  end
end
