#!/usr/bin/env bash
# Two `bot run` processes on this machine against one PostgreSQL, as a load-balanced
# deployment would run them (ports 8001 and 8002). Needs the settings of
# deploy/scaled.env.example in the environment (or .env), a reachable DATABASE_URL and, so
# that the two keep the platforms' limits together, REDIS_URL (Redis on this machine: below).
set -euo pipefail
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
bot migrate
PORT=8001 bot run & first=$!
PORT=8002 bot run & second=$!
trap 'kill -TERM $first $second; wait' INT TERM
wait
