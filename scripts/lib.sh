# Shared helpers for jwsl's scripts (sourced, not run).

# Picks JDK 25: $JAVA_HOME if it is 25+, else Debian/Temurin install locations.
jwsl_java_home() {
  local c
  for c in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-25-openjdk-amd64; do
    # The JDK's release file names its version: no JVM start (or grep) just to ask, every wsl call
    # sources this.
    if [ -n "$c" ] && [ -x "$c/bin/java" ] && jwsl_jdk_25 "$c/release"; then
      export JAVA_HOME=$c
      # Maven 3.8's Guice/Guava touch sun.misc.Unsafe: silence JDK 24+'s warnings about it.
      export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
      return 0
    fi
  done
  echo "jwsl: JDK 25 not found: run scripts/install-prereqs" >&2
  return 1
}

# True when the JDK release file $1 says JAVA_VERSION 25 or later. Builtins only.
jwsl_jdk_25() {
  local line
  [ -r "$1" ] || return 1
  while IFS= read -r line; do
    case $line in 'JAVA_VERSION="2'[5-9]*) return 0 ;; esac
  done < "$1"
  return 1
}

# True when this host's /dev/kvm can run VMs (else the scripts use scripts/nested-kvm).
jwsl_kvm_usable() {
  [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]
}

# The host programs' modules under cli/: client (the wsl command), service (the service, jwsl-vmm,
# jwsl-9p), bench (benchmark drivers, built by the bench scripts only). Sets jwsl_jar (the module's
# jar), jwsl_cp (its class path: the jar and the dependencies Maven copied to target/lib) and
# jwsl_native (the JVM flag naming UnixStream's JNI library, built with cli/protocol).
# No subshells: bin/wsl runs this on every call.
jwsl_module() { # ROOT MODULE
  local name=jwsl-$2
  [ "$2" = client ] && name=jwsl-cli
  jwsl_jar="$1/cli/$2/target/$name-0.1.0-SNAPSHOT.jar"
  jwsl_cp="$jwsl_jar:$1/cli/$2/target/lib/*"
  jwsl_native="-Djwsl.native.lib=$1/cli/protocol/target/libjwsl-unix.so"
}

# JWSL_TTY for HostTerminal.isInteractive: whether stdin and stdout are terminals, asked here for
# free, where the JVM would link libc calls through FFM first (tens of ms on the host, far more
# under emulation). The launchers call it just before they start the JVM.
jwsl_export_tty() {
  if [ -t 0 ] && [ -t 1 ]; then export JWSL_TTY=1; else export JWSL_TTY=0; fi
}

# True when an AOT cache is usable: trained on this CPU (it holds generated code, such as call
# adapters, that uses the trainer's instruction set: another CPU may die of SIGILL) and newer than
# the module's jar and every jar in its target/lib (the JVM would reject it). Call after
# jwsl_module. Reads files with builtins only.
jwsl_aot_fresh() { # CACHE
  local f trained=
  [ -f "$1" ] && [ -f "$1.cpu" ] || return 1
  jwsl_cpu_flags
  IFS= read -r trained < "$1.cpu" || true
  [ "$trained" = "$jwsl_cpu" ] || return 1
  for f in "$jwsl_jar" "${jwsl_jar%/*}"/lib/*.jar; do
    [ "$1" -nt "$f" ] || return 1
  done
}

# For the benchmarks: runs scripts/train-aot unless TRAIN_AOT=0 or both launchers' caches fit this
# CPU and the jars (in the nested L1 the host-trained caches do not); then sets jwsl_aot to
# "yes, trained on ..." or "no" for the report. Sets jwsl_jar/jwsl_cp as jwsl_module does.
jwsl_bench_aot() { # ROOT
  local stale= how
  jwsl_module "$1" client; jwsl_aot_fresh "$1/cli/client/target/wsl.aot" || stale=1
  jwsl_module "$1" service; jwsl_aot_fresh "$1/cli/service/target/jwsl-vmm.aot" || stale=1
  jwsl_aot_fresh "$1/cli/service/target/jwsl-service.aot" || stale=1
  if [ "${TRAIN_AOT:-1}" = 1 ] && [ -n "$stale" ]; then
    echo "training the AOT caches for this CPU (scripts/train-aot)" >&2
    "$1/scripts/train-aot" >&2
  fi
  if jwsl_aot_fresh "$1/cli/service/target/jwsl-vmm.aot"; then
    IFS= read -r how < "$1/cli/service/target/jwsl-vmm.aot.how" || how=unknown
    jwsl_aot="yes (jwsl-vmm trained on $how)"
  else
    jwsl_aot=no
  fi
}

# Sets jwsl_cpu to this CPU's feature flags (the first "flags" line of /proc/cpuinfo).
jwsl_cpu_flags() {
  local line
  jwsl_cpu=
  while IFS= read -r line; do
    case $line in flags*) jwsl_cpu=${line#*: }; return 0 ;; esac
  done < /proc/cpuinfo
}

# Builds the benchmark drivers (cli/bench, Maven profile "bench"; never part of the product) and
# sets jwsl_cp to their class path.
jwsl_build_bench() { # ROOT
  (cd "$1" && mvn -q -B -Pbench package -DskipTests -pl cli/bench -am) || return 1
  jwsl_module "$1" bench
}
