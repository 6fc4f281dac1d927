-- The demo/test "shop" database: orders and payments with test card
-- numbers (published test PANs, not real cards). Run as a superuser in
-- database shop; roles shop_reader and shop_writer must exist.
CREATE TABLE customers (
    id    int PRIMARY KEY,
    name  text NOT NULL,
    email text
);
CREATE TABLE orders (
    id          int PRIMARY KEY,
    customer_id int REFERENCES customers(id),
    note        text,
    total       numeric(12,2) DEFAULT 0
);
CREATE TABLE payments (
    id       int PRIMARY KEY,
    customer text NOT NULL,
    pan      text NOT NULL,
    amount   numeric(12,2) NOT NULL,
    created  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers VALUES
    (1, 'Ada Lovelace', 'ada@example.com'),
    (2, 'Alan Turing', 'alan@example.com'),
    (3, 'Grace Hopper', 'grace@example.com');
INSERT INTO orders VALUES
    (1, 1, 'first order', 42.00),
    (2, 2, 'paid by card 4111 1111 1111 1111 per phone', 17.50),
    (3, 3, 'gift wrap', 99.99);
INSERT INTO payments (id, customer, pan, amount) VALUES
    (1, 'Ada Lovelace', '4111111111111111', 42.00),
    (2, 'Alan Turing', '5555555555554444', 17.50),
    (3, 'Grace Hopper', '378282246310005', 99.99),
    (4, 'Grace Hopper', '6011-1111-1111-1117', 12.00);

GRANT USAGE ON SCHEMA public TO shop_reader, shop_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO shop_reader;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO shop_writer;
-- The writer may create tables (SELECT INTO, CREATE TABLE AS) so that the
-- guardrails, not missing grants, are what stops the dangerous ones.
GRANT CREATE ON SCHEMA public TO shop_writer;
