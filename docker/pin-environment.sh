#!/bin/sh
# pin-environment.sh FILE NAME=VERSION ...: set the version of each NAME pinned in the conda
# environment FILE, keeping its operator ("- NAME=V" for conda, "- NAME==V" for pip). The Dockerfile
# gives its build args to environment.yml this way. A NAME that is not pinned on exactly one line is
# an error, never a silent no-op: a build arg must not be ignored.
set -eu

file="$1"
shift
for pin in "$@"; do
  name="${pin%%=*}"
  version="${pin#*=}"
  case "$version" in
    '' | *[!0-9A-Za-z.*+_-]*)
      echo "pin-environment.sh: '$pin' has no usable version (letters, digits and . * + _ - only)" >&2
      exit 2
      ;;
  esac
  count="$(grep -cE "^[[:space:]]*- ${name}==?[^=]" "$file" || true)"
  if [ "$count" != 1 ]; then
    echo "pin-environment.sh: $file pins $name on $count lines, expected 1 (- $name=VERSION or - $name==VERSION)" >&2
    exit 1
  fi
  sed -i -E "s/^([[:space:]]*- ${name}==?)[^[:space:]#]+/\\1${version}/" "$file"
done
