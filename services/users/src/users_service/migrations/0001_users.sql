-- Users of the platform. Usernames and emails are unique regardless of case ("Admin" is "admin").
CREATE TABLE IF NOT EXISTS users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text        NOT NULL CHECK (char_length(username) BETWEEN 3 AND 50),
    email         text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 320),
    password_hash text        NOT NULL,
    is_active     boolean     NOT NULL DEFAULT true,
    roles         text[]      NOT NULL DEFAULT '{}',
    signup_date   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS users_username_key ON users (lower(username));
CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (lower(email));
