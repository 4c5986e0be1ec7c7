package com.acme.db;

/** A JDBC-template look-alike: the database error comes from a library-like package. */
public class JdbcTemplate {
    public int update(String sql, long id) {
        try {
            return execute(sql, id);
        } catch (SqlStateException e) {
            throw new DataAccessException("PreparedStatementCallback; SQL [" + sql + "]", e);
        }
    }

    private int execute(String sql, long id) throws SqlStateException {
        throw new SqlStateException(
            "ERROR: duplicate key value violates unique constraint \"orders_pkey\"\n"
            + "  Detail: Key (id)=(" + id + ") already exists.");
    }
}
