#!/usr/bin/env bash
# Provision pulsar-perf (the broker's own load generator) for the benchmarks in
# perf/, into the cache next to the broker. Idempotent. Prints its home dir.
#
# Maven Central here serves org.apache.pulsar:pulsar-testclient 4.0.8 but not the
# broker jars its command table (PulsarPerfTestTool) loads, so we exclude those,
# add a log4j binding for slf4j 2 (pulsar-perf reports through its log), and run
# the producer/consumer commands through our small launcher, perf/java/FsPulsarPerf.java.
# The 4.0 client speaks the same binary protocol to the 3.0 broker.
set -euo pipefail
cd "$(dirname "$0")/.."

PERF_VERSION="${FS_PULSAR_PERF_VERSION:-4.0.8}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/function-stream"
HOME_DIR="$CACHE/pulsar-perf-$PERF_VERSION"
LAUNCHER_SRC="$PWD/perf/java/FsPulsarPerf.java"

if [[ -f "$HOME_DIR/.complete" && "$HOME_DIR/launcher/FsPulsarPerf.class" -nt "$LAUNCHER_SRC" ]]; then
    echo "$HOME_DIR"
    exit 0
fi
mkdir -p "$HOME_DIR/launcher"
cat > "$HOME_DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.functionstream.local</groupId>
  <artifactId>pulsar-perf-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.apache.pulsar</groupId><artifactId>pulsar</artifactId>
        <version>$PERF_VERSION</version><type>pom</type><scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>org.apache.pulsar</groupId><artifactId>pulsar-testclient</artifactId>
      <version>$PERF_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.pulsar</groupId><artifactId>pulsar-broker</artifactId></exclusion>
        <exclusion><groupId>org.apache.pulsar</groupId><artifactId>pulsar-websocket</artifactId></exclusion>
        <exclusion><groupId>org.apache.pulsar</groupId><artifactId>pulsar-metadata</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>2.23.1</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>2.23.1</version>
    </dependency>
  </dependencies>
</project>
POM
if [[ ! -f "$HOME_DIR/.complete" ]]; then
    echo "provision-pulsar-perf: resolving pulsar-testclient $PERF_VERSION with mvn" >&2
    rm -rf "$HOME_DIR/lib.partial"
    mvn -B -q -f "$HOME_DIR/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$HOME_DIR/lib.partial" >&2
    rm -rf "$HOME_DIR/lib"
    mv "$HOME_DIR/lib.partial" "$HOME_DIR/lib"
fi
cat > "$HOME_DIR/log4j2.xml" <<'XML'
<Configuration status="warn">
  <Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="%m%n"/></Console></Appenders>
  <Loggers><Root level="info"><AppenderRef ref="out"/></Root></Loggers>
</Configuration>
XML
javac -cp "$HOME_DIR/lib/*" -d "$HOME_DIR/launcher" "$LAUNCHER_SRC"
echo "$PERF_VERSION" > "$HOME_DIR/.complete"
echo "$HOME_DIR"
