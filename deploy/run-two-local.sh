#!/usr/bin/env bash
# Two `bot run` processes on this machine against one PostgreSQL, as a load-balanced
# deployment would run them (ports 8001 and 8002). Needs the settings of
# deploy/scaled.env.example in the environment (or .env) and a reachable DATABASE_URL.
set -euo pipefail
bot migrate
PORT=8001 bot run & first=$!
PORT=8002 bot run & second=$!
trap 'kill -TERM $first $second; wait' INT TERM
wait
