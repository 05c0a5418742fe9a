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
