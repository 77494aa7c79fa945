#!/bin/sh
# Writes far more than any output limit.
i=0
while [ $i -lt 2000 ]; do
  echo "line $i: the quick brown fox jumps over the lazy dog"
  i=$((i+1))
done
