#!/bin/sh
# Build the example modules (see Makefile for the toolchain requirements).
set -e
cd "$(dirname "$0")"
exec make "$@"
