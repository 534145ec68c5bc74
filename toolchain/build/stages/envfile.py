"""Shell text shared by the files users source (env.sh, Rust's env file)."""

# Sourced files find the toolchain from their own location (bash, zsh) or from
# $MUSL_TOOLCHAIN_PREFIX (other shells): no build path is written into the toolchain.
LOCATE = """\
if [ -n "${{BASH_SOURCE:-}}" ]; then _tc_env="${{BASH_SOURCE}}"
elif [ -n "${{ZSH_VERSION:-}}" ]; then eval '_tc_env="${{(%):-%x}}"'
else _tc_env=""; fi
if [ -n "$_tc_env" ]; then _tc_prefix="$(cd "$(dirname "$_tc_env")/{up}" && pwd)"
else _tc_prefix="${{MUSL_TOOLCHAIN_PREFIX:-}}"; fi
if [ ! -x "$_tc_prefix/bin/{triple}-gcc" ]; then
  echo "cannot find the {triple} toolchain: source this from bash or zsh, or set MUSL_TOOLCHAIN_PREFIX" >&2
else
"""
LOCATE_END = """fi
unset _tc_env _tc_prefix
"""
