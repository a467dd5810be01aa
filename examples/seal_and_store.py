#!/usr/bin/env python3
"""Seal a provider key on the client and store it with create_secret_sealed.

The value is read from standard input, so it never appears on a command line,
in SQL text, in a bind parameter the server could log, or in a captured
packet: only the sealed box (X25519 + XSalsa20-Poly1305, libsodium's
crypto_box_seal) leaves this process.

    echo -n "$ANTHROPIC_API_KEY" | python3 examples/seal_and_store.py \
        --dsn "host=/tmp/cortex_vault_demo port=5432 user=dashboard dbname=postgres" \
        --org a11ce000-0000-4000-8000-00000000ac4e --name anthropic --deployment support-bot

With strict mode on, pass a signed context token in the environment variable
CORTEX_VAULT_CONTEXT_TOKEN (kept off the command line on purpose).

Needs psycopg 3 and PyNaCl (Debian: python3-psycopg python3-nacl).
"""

import argparse
import os
import sys
import uuid

import nacl.public
import psycopg
from psycopg import sql


def seal_and_store(conn, org, name, value, deployment=None, provider=None, token=None):
    """Stores `value` sealed; returns the new secret's id.

    The sealed plaintext is the organization id (16 bytes) followed by the
    value, so the box opens only for that organization. With `token`, the
    context comes from a signed context token (needed in strict mode).
    """
    with conn.transaction():
        cur = conn.cursor()
        if token:
            cur.execute(sql.SQL("SET LOCAL cortex_vault.context_token = {}").format(sql.Literal(token)))
        else:
            cur.execute("SELECT set_config('cortex_vault.org_id', %s, true)", (org,))
        public_key = bytes(cur.execute("SELECT cortex_vault.sealing_public_key()").fetchone()[0])
        plaintext = uuid.UUID(org).bytes + value.encode()
        sealed = nacl.public.SealedBox(nacl.public.PublicKey(public_key)).encrypt(plaintext)
        cur.execute("SELECT cortex_vault.create_secret_sealed(%s, %s, %s, %s)",
                    (name, sealed, deployment, provider))
        return cur.fetchone()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--org", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--deployment")
    parser.add_argument("--provider")
    args = parser.parse_args()
    token = os.environ.get("CORTEX_VAULT_CONTEXT_TOKEN")
    value = sys.stdin.read()
    if not value:
        sys.exit("no value on standard input")
    with psycopg.connect(args.dsn) as conn:
        print(seal_and_store(conn, args.org, args.name, value, args.deployment, args.provider,
                             token))


if __name__ == "__main__":
    main()
