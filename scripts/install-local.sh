#!/usr/bin/env bash
# install-local.sh installs what Flywheel's local platform needs on a Debian
# machine: PyTorch (Debian's python3-torch, with OpenBLAS) for the trainer,
# and a llama-server binary built once from the llama.cpp release shipped by
# the npm package node-llama-cpp, linked against that package's prebuilt
# libraries.
#
# It is idempotent (each step is skipped when its result is already there),
# prints progress and the time of every step, and needs no input, so it can
# run as root in CI. Nothing is fetched except through apt and npm.
#
# Usage: scripts/install-local.sh [--no-apt] [--no-server] [--force-build]
#
# Environment:
#   FLYWHEEL_LOCAL_DIR  install directory (FLYWHEEL_CACHE is its older name);
#                       default /usr/local/lib/flywheel as root (found by
#                       every user, whatever HOME), else the user's cache
#                       ${XDG_CACHE_HOME:-$HOME/.cache}/flywheel. llama-server
#                       goes to $FLYWHEEL_LOCAL_DIR/llama-server/; flywheel
#                       finds it there (config key platform.local.install_dir)
#   LLAMA_SERVER        use this llama-server instead of building one
#   NODE_LLAMA_CPP_VERSION  npm version to build from (default 3.21.1)
#   JOBS                parallel compiler jobs (default: number of CPUs)
set -euo pipefail

NLC_VERSION="${NODE_LLAMA_CPP_VERSION:-3.21.1}"
USER_CACHE="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/flywheel"
if [ -n "${FLYWHEEL_LOCAL_DIR:-}" ]; then
	CACHE="$FLYWHEEL_LOCAL_DIR"
elif [ -n "${FLYWHEEL_CACHE:-}" ]; then
	CACHE="$FLYWHEEL_CACHE"
elif [ "$(id -u)" -eq 0 ]; then
	CACHE=/usr/local/lib/flywheel
else
	CACHE="$USER_CACHE"
fi
SERVER_DIR="$CACHE/llama-server"
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
DO_APT=1
DO_SERVER=1
FORCE_BUILD=0

for arg in "$@"; do
	case "$arg" in
	--no-apt) DO_APT=0 ;;
	--no-server) DO_SERVER=0 ;;
	--force-build) FORCE_BUILD=1 ;;
	-h | --help)
		sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "install-local: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

SCRIPT_START=$(date +%s)
STEP_START=$SCRIPT_START
step() {
	STEP_START=$(date +%s)
	echo "==> $*"
}
done_step() {
	local now
	now=$(date +%s)
	echo "    done in $((now - STEP_START))s"
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		echo "install-local: need root (or sudo) for: $*" >&2
		return 1
	fi
}

# python_has_torch reports whether Debian's python3 imports torch.
python_has_torch() {
	/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1
}

# ---------------------------------------------------------------- apt ----
if [ "$DO_APT" -eq 1 ]; then
	pkgs=()
	python_has_torch || pkgs+=(python3-torch python3-numpy)
	[ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ] ||
		dpkg -s libopenblas0-pthread >/dev/null 2>&1 || pkgs+=(libopenblas0-pthread)
	if [ "$DO_SERVER" -eq 1 ]; then
		command -v g++ >/dev/null 2>&1 || pkgs+=(g++)
		command -v gcc >/dev/null 2>&1 || pkgs+=(gcc)
		command -v git >/dev/null 2>&1 || pkgs+=(git)
		command -v npm >/dev/null 2>&1 || pkgs+=(npm)
	fi
	if [ "${#pkgs[@]}" -gt 0 ]; then
		step "apt-get install ${pkgs[*]}"
		export DEBIAN_FRONTEND=noninteractive
		as_root apt-get update -q
		as_root apt-get install -y -q --no-install-recommends "${pkgs[@]}"
		done_step
	else
		echo "==> apt packages already installed (python3-torch, libopenblas0-pthread, build tools)"
	fi
	if python_has_torch; then
		echo "    torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')"
	fi
fi

# ------------------------------------------------------- llama-server ----
if [ "$DO_SERVER" -eq 0 ]; then
	echo "==> skipping llama-server (--no-server)"
	exit 0
fi

# A llama-server built by an older version of this script in the user's
# cache is copied (binary and libraries, not the build files) to the install
# directory rather than built again.
OLD_DIR="$USER_CACHE/llama-server"
if [ "$FORCE_BUILD" -eq 0 ] && [ ! -x "$SERVER_DIR/llama-server" ] && [ "$OLD_DIR" != "$SERVER_DIR" ] &&
	[ -x "$OLD_DIR/llama-server" ] && "$OLD_DIR/llama-server" --version >/dev/null 2>&1; then
	step "copy llama-server from $OLD_DIR to $SERVER_DIR"
	mkdir -p "$SERVER_DIR"
	find "$OLD_DIR" -maxdepth 1 -type f -exec cp -a {} "$SERVER_DIR/" \;
	done_step
fi

existing=""
if [ "$FORCE_BUILD" -eq 0 ]; then
	if [ -n "${LLAMA_SERVER:-}" ] && [ -x "${LLAMA_SERVER}" ]; then
		existing="$LLAMA_SERVER"
	elif [ -x "$SERVER_DIR/llama-server" ]; then
		existing="$SERVER_DIR/llama-server"
	elif command -v llama-server >/dev/null 2>&1; then
		existing="$(command -v llama-server)"
	fi
fi
if [ -n "$existing" ]; then
	echo "==> llama-server already available: $existing"
	echo "install-local: ready in $(($(date +%s) - SCRIPT_START))s"
	exit 0
fi

for tool in g++ gcc git npm tar; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "install-local: $tool is missing; run without --no-apt or install it" >&2
		exit 1
	fi
done

BUILD="$SERVER_DIR/build"
mkdir -p "$BUILD"

step "npm pack node-llama-cpp@$NLC_VERSION and @node-llama-cpp/linux-x64@$NLC_VERSION"
if [ ! -f "$BUILD/node-llama-cpp-$NLC_VERSION.tgz" ] || [ ! -f "$BUILD/node-llama-cpp-linux-x64-$NLC_VERSION.tgz" ]; then
	(cd "$BUILD" && npm pack --silent "node-llama-cpp@$NLC_VERSION" "@node-llama-cpp/linux-x64@$NLC_VERSION" >/dev/null)
fi
done_step

step "unpack sources and prebuilt libraries"
if [ ! -d "$BUILD/src/.git" ]; then
	rm -rf "$BUILD/nlc" "$BUILD/src"
	mkdir -p "$BUILD/nlc"
	tar xzf "$BUILD/node-llama-cpp-$NLC_VERSION.tgz" -C "$BUILD/nlc" package/llama/gitRelease.bundle
	git -c advice.detachedHead=false clone -q "$BUILD/nlc/package/llama/gitRelease.bundle" "$BUILD/src"
	rm -rf "$BUILD/nlc"
fi
LIBS="$BUILD/libs"
if [ ! -d "$LIBS" ]; then
	mkdir -p "$BUILD/libs.tmp"
	tar xzf "$BUILD/node-llama-cpp-linux-x64-$NLC_VERSION.tgz" -C "$BUILD/libs.tmp"
	mv "$BUILD/libs.tmp/package/bins/linux-x64" "$LIBS"
	rm -rf "$BUILD/libs.tmp"
fi
done_step

S="$BUILD/src"
O="$BUILD/obj"
mkdir -p "$O"

step "generate the (empty) web UI stub"
g++ -O1 -std=c++17 -o "$O/llama-ui-embed" "$S/tools/ui/embed.cpp"
"$O/llama-ui-embed" "$O/ui.cpp" "$O/ui.h"
done_step

# The multimodal library's sources, as its CMakeLists lists them.
mtmd_srcs=$(sed -n '/^add_library(mtmd/,/)/p' "$S/tools/mtmd/CMakeLists.txt" | grep -o '[A-Za-z0-9_./-]*\.cpp' | sed "s|^|tools/mtmd/|")
server_srcs=$(cd "$S" && ls tools/server/*.cpp)
cxx_srcs="$server_srcs $mtmd_srcs vendor/cpp-httplib/httplib.cpp vendor/hash/hash.cpp"
c_srcs="vendor/hash/xxhash/xxhash.c vendor/hash/sha1/sha1.c vendor/hash/sha256/sha256.c"
n_files=$(($(echo $cxx_srcs $c_srcs | wc -w) + 1))

step "compile llama-server ($n_files files, $JOBS jobs; takes a few minutes)"
export S O
CXXFLAGS="-O2 -std=c++17 -DGGML_USE_CPU -DLLAMA_SUBPROCESS -DNDEBUG -w -I$S -I$S/include -I$S/common -I$S/ggml/include -I$S/vendor -I$S/tools/mtmd -I$S/tools/server -I$O"
export CXXFLAGS
compile_one() {
	local src="$1" obj
	obj="$O/$(echo "$src" | sed 's|^\.\./obj/||' | tr '/' '_').o"
	if [ -f "$obj" ] && [ "$obj" -nt "$S/$src" ]; then
		return 0
	fi
	case "$src" in
	*/sha1.c) g++ -x c++ -O2 -w -I"$S/vendor/hash" -c "$S/$src" -o "$obj.tmp" || return 1 ;;
	*.c) gcc -O2 -w -I"$S/vendor/hash" -c "$S/$src" -o "$obj.tmp" || return 1 ;;
	*) g++ $CXXFLAGS -c "$S/$src" -o "$obj.tmp" || return 1 ;;
	esac
	mv "$obj.tmp" "$obj" || return 1
	echo "    compiled $src"
}
export -f compile_one
# shellcheck disable=SC2086
printf '%s\n' $cxx_srcs $c_srcs "__ui__" | sed "s|__ui__|../obj/ui.cpp|" |
	xargs -P "$JOBS" -I{} bash -c 'compile_one "$@"' _ {}
done_step

step "link llama-server against the prebuilt libraries"
mkdir -p "$SERVER_DIR/stage"
cp -a "$LIBS"/*.so "$SERVER_DIR/stage/"
g++ -o "$SERVER_DIR/stage/llama-server" "$O"/*.o \
	"$LIBS/libllama-common.so" "$LIBS/libllama.v0.4.0.so" "$LIBS/libggml.v0.4.0.so" "$LIBS/libggml-base.so" \
	-Wl,-rpath,'$ORIGIN' -lpthread -ldl
"$SERVER_DIR/stage/llama-server" --version >/dev/null 2>&1 || {
	echo "install-local: the built llama-server does not run:" >&2
	"$SERVER_DIR/stage/llama-server" --version >&2 || true
	exit 1
}
for f in "$SERVER_DIR/stage"/*; do
	mv -f "$f" "$SERVER_DIR/"
done
rmdir "$SERVER_DIR/stage"
done_step

echo "==> llama-server: $SERVER_DIR/llama-server"
"$SERVER_DIR/llama-server" --version 2>&1 | sed 's/^/    /' | head -3
echo "install-local: ready in $(($(date +%s) - SCRIPT_START))s (build files kept in $BUILD; delete to save $(du -sh "$BUILD" 2>/dev/null | cut -f1 || echo 'about 290 MB'))"
