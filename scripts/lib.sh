# Shared helpers for jwsl's scripts (sourced, not run).

# Picks JDK 25: $JAVA_HOME if it is 25+, else Debian/Temurin install locations.
jwsl_java_home() {
  local c
  for c in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/java-25-openjdk-amd64; do
    # The JDK's release file names its version: no JVM start just to ask (every wsl call sources this).
    if [ -n "$c" ] && [ -x "$c/bin/java" ] && grep -qs '^JAVA_VERSION="2[5-9]' "$c/release"; then
      export JAVA_HOME=$c
      # Maven 3.8's Guice/Guava touch sun.misc.Unsafe: silence JDK 24+'s warnings about it.
      export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
      return 0
    fi
  done
  echo "jwsl: JDK 25 not found: run scripts/install-prereqs" >&2
  return 1
}

# True when this host's /dev/kvm can run VMs (else the scripts use scripts/nested-kvm).
jwsl_kvm_usable() {
  [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]
}

# The host programs' modules under cli/: client (the wsl command), service (the service, jwsl-vmm,
# jwsl-9p), bench (benchmark drivers, built by the bench scripts only). Sets jwsl_jar (the module's
# jar) and jwsl_cp (its class path: the jar and the dependencies Maven copied to target/lib).
# No subshells: bin/wsl runs this on every call.
jwsl_module() { # ROOT MODULE
  local name=jwsl-$2
  [ "$2" = client ] && name=jwsl-cli
  jwsl_jar="$1/cli/$2/target/$name-0.1.0-SNAPSHOT.jar"
  jwsl_cp="$jwsl_jar:$1/cli/$2/target/lib/*"
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
