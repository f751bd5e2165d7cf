#!/usr/bin/env bash
# Provision Apache Pulsar (standalone broker) from Maven Central into a cache
# outside the repository. Idempotent: a second run with a complete cache is a
# no-op. Prints the Pulsar home directory on its last line.
#
# Maven Central here serves the broker's jars but not the
# pulsar-server-distribution tarball, so we resolve org.apache.pulsar:pulsar-broker
# with the org.apache.pulsar:pulsar BOM imported (without it resolution loops)
# and copy its runtime classpath into lib/. fsd runs
# org.apache.pulsar.PulsarStandaloneStarter from it (see fsd/broker.py).
set -euo pipefail

PULSAR_VERSION="${FS_PULSAR_VERSION:-3.0.2}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/function-stream"
HOME_DIR="${FS_PULSAR_HOME:-$CACHE/pulsar-$PULSAR_VERSION}"

if [[ -f "$HOME_DIR/.complete" ]]; then
    echo "$HOME_DIR"
    exit 0
fi

command -v mvn >/dev/null || { echo "provision-pulsar: mvn not found; install maven (apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null || { echo "provision-pulsar: java not found; install a JDK 17 (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }

mkdir -p "$HOME_DIR"
cat > "$HOME_DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.functionstream.local</groupId>
  <artifactId>pulsar-standalone-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.apache.pulsar</groupId>
        <artifactId>pulsar</artifactId>
        <version>$PULSAR_VERSION</version>
        <type>pom</type>
        <scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>org.apache.pulsar</groupId>
      <artifactId>pulsar-broker</artifactId>
      <version>$PULSAR_VERSION</version>
    </dependency>
  </dependencies>
</project>
POM

echo "provision-pulsar: resolving Apache Pulsar $PULSAR_VERSION with mvn into $HOME_DIR (first run: about a minute)" >&2
rm -rf "$HOME_DIR/lib.partial"
attempt=1
until mvn -B -q -f "$HOME_DIR/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$HOME_DIR/lib.partial" >&2; do
    if (( attempt >= 3 )); then
        echo "provision-pulsar: mvn failed 3 times; see its output above" >&2
        exit 1
    fi
    attempt=$((attempt + 1))
    echo "provision-pulsar: mvn failed, retrying ($attempt/3)" >&2
    sleep 5
done
ls "$HOME_DIR/lib.partial/pulsar-broker-$PULSAR_VERSION.jar" >/dev/null
rm -rf "$HOME_DIR/lib"
mv "$HOME_DIR/lib.partial" "$HOME_DIR/lib"
echo "$PULSAR_VERSION" > "$HOME_DIR/.complete"
echo "$HOME_DIR"
