#!/bin/sh
# First start: system tables, then root's password from MARIADB_ROOT_PASSWORD (through the
# environment, not a command line); then the server as PID 1, without networking.
set -e
install -d -o mysql -g mysql /run/mysqld /var/lib/mysql
if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=normal >/dev/null
    mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock &
    pid=$!
    until mariadb-admin --socket=/run/mysqld/mysqld.sock -uroot ping >/dev/null 2>&1; do sleep 0.2; done
    # printf is a shell builtin: the password is on no command line ps could show.
    printf "ALTER USER 'root'@'localhost' IDENTIFIED BY '%s'; FLUSH PRIVILEGES;\n" "$MARIADB_ROOT_PASSWORD" |
        mariadb --socket=/run/mysqld/mysqld.sock -uroot
    MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb-admin --socket=/run/mysqld/mysqld.sock -uroot shutdown
    wait "$pid" || true
fi
exec mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock
