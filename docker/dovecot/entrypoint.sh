#!/bin/sh
# Create the demo users and a self-signed certificate, then run Dovecot in the foreground.
set -eu
: "${DEMO_MAIL_USERS:?set DEMO_MAIL_USERS to 'user@domain:password ...'}"
mkdir -p /etc/dovecot/tls /srv/mail
if [ ! -f /etc/dovecot/tls/cert.pem ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=${DEMO_MAIL_HOSTNAME:-dovecot}" \
        -keyout /etc/dovecot/tls/key.pem -out /etc/dovecot/tls/cert.pem 2>/dev/null
    # Shared with the Airflow containers, so the inboxes can verify the server (--ca-file).
    cp /etc/dovecot/tls/cert.pem /srv/mail/ca.pem
fi
: > /etc/dovecot/users
for entry in $DEMO_MAIL_USERS; do
    user=${entry%%:*}
    password=${entry#*:}
    echo "$user:$(doveadm pw -s SHA512-CRYPT -p "$password")" >> /etc/dovecot/users
done
chown -R 5000:5000 /srv/mail
exec dovecot -F -c /etc/dovecot/inboxsync.conf
