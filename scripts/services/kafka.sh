# shellcheck shell=bash
# Kafka: one KRaft node (broker + controller), Apache Kafka jars from Maven Central,
# PLAINTEXT on 127.0.0.1:19092, controller on :19093. Topics are not
# auto-created: tests create theirs. For the scaler's SASL and TLS paths the
# broker also listens with SASL_PLAINTEXT on :19094 (PLAIN, SCRAM-SHA-256 and
# SCRAM-SHA-512, one user) and SSL on :19095 (a test CA made with openssl in
# $SERVICES_DIR/kafka/tls; client certificates requested, not required, so one
# from the same CA gives mutual TLS). Inter-broker and controller traffic stay
# PLAINTEXT. `up` restarts a broker that runs an older server.properties.

# shellcheck source=scripts/services/lib.sh
[ -n "${SERVICES_LIB_LOADED:-}" ] || . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_PORT="${SERVICES_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${SERVICES_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_SASL_PORT="${SERVICES_KAFKA_SASL_PORT:-19094}"
KAFKA_SSL_PORT="${SERVICES_KAFKA_SSL_PORT:-19095}"

# Kafka 4.3.1: the newest line whose every artifact (kafka-tools included) Maven Central serves.
KAFKA_VERSION="${SERVICES_KAFKA_VERSION:-4.3.1}"
SLF4J_VERSION=2.0.17
KAFKA_JAVA_OPTS="${SERVICES_KAFKA_JAVA_OPTS:--Xms64m -Xmx512m -XX:MaxMetaspaceSize=256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"

KAFKA_DIR="$SERVICES_DIR/kafka"
KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"
KAFKA_LOG="$KAFKA_DIR/kafka.log"
pid_pattern kafka.pid kafka.Kafka

KAFKA_SASL_USER=scaler

kafka_packages() { command -v openssl >/dev/null 2>&1 || echo openssl; }
kafka_install_needs() { java_build_packages; }
kafka_install() {
  # slf4j-api 2.x next to slf4j-simple: Kafka pulls slf4j-api 1.7, which would
  # not find the 2.x backend and log nothing.
  maven_fetch "$KAFKA_HOME" kafka "$(maven_dep org.apache.kafka kafka_2.13 "$KAFKA_VERSION")
$(maven_dep org.apache.kafka kafka-tools "$KAFKA_VERSION")
$(maven_dep org.slf4j slf4j-api "$SLF4J_VERSION")
$(maven_dep org.slf4j slf4j-simple "$SLF4J_VERSION")"
}

# Test CA, broker certificate (127.0.0.1 / localhost) and a client certificate
# for mutual TLS, made once per state dir. Keys are unencrypted PKCS#8 PEM.
kafka_tls_files() { test_tls_files kafka "$KAFKA_DIR/tls"; }

# The SASL password, made once per state dir (PLAIN reads it from server.properties,
# SCRAM from the cluster metadata, see kafka_scram_users).
kafka_sasl_password() {
  local file="$KAFKA_DIR/sasl-password"
  if [ ! -s "$file" ]; then
    mkdir -p "$KAFKA_DIR"
    (umask 077; openssl rand -hex 12 >"$file")
  fi
  cat "$file"
}

# A PEM file as one java.util.Properties value (\n escapes: Kafka parses real PEM lines).
pem_property() { awk '{ printf "%s\\n", $0 }' "$1"; }

kafka_properties() {
  local tls="$KAFKA_DIR/tls" password; password="$(kafka_sasl_password)"
  cat <<EOF
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$password";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.ssl.ssl.client.auth=requested
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.key=$(pem_property "$tls/server.key")
listener.name.ssl.ssl.keystore.certificate.chain=$(pem_property "$tls/server.pem")
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.certificates=$(pem_property "$tls/ca.pem")
log.dirs=$KAFKA_DIR/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
}

kafka_env() {
  echo "KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
  echo "KAFKA_SASL_BROKERS=127.0.0.1:$KAFKA_SASL_PORT"
  echo "KAFKA_SASL_USERNAME=$KAFKA_SASL_USER"
  echo "KAFKA_SASL_PASSWORD=$(kafka_sasl_password)"
  echo "KAFKA_TLS_BROKERS=127.0.0.1:$KAFKA_SSL_PORT"
  echo "KAFKA_TLS_CA_FILE=$KAFKA_DIR/tls/ca.pem"
  echo "KAFKA_TLS_CLIENT_CERT_FILE=$KAFKA_DIR/tls/client.pem"
  echo "KAFKA_TLS_CLIENT_KEY_FILE=$KAFKA_DIR/tls/client.key"
}
kafka_describe() {
  echo "127.0.0.1:$KAFKA_PORT (SASL :$KAFKA_SASL_PORT, SSL :$KAFKA_SSL_PORT, controller :$KAFKA_CONTROLLER_PORT, Kafka $KAFKA_VERSION)"
}
# The broker lists itself and a group coordinator answers (scripts/probes/kafka.mjs, kafkajs).
kafka_ready() { probe kafka "127.0.0.1:$KAFKA_PORT" 5000; }
kafka_alive() { pid_alive "$KAFKA_PIDFILE"; }
kafka_secure_ports_open() { port_open "$KAFKA_SASL_PORT" && port_open "$KAFKA_SSL_PORT"; }

# SCRAM users live in the cluster metadata, not in server.properties: made through the
# admin API (works on a fresh and on an already formatted node alike), once per password.
kafka_scram_users() {
  local password done_file="$KAFKA_DIR/scram-users.done"
  password="$(kafka_sasl_password)"
  local want; want="$KAFKA_SASL_USER $(printf '%s' "$password" | sha256sum | cut -c1-16)"
  [ "$(cat "$done_file" 2>/dev/null)" = "$want" ] && return 0
  log "kafka: adding SCRAM-SHA-256/512 credentials for user $KAFKA_SASL_USER"
  : >"$KAFKA_DIR/scram.log"
  local mechanism
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do # one per request: the broker refuses two for one user
    # shellcheck disable=SC2086
    if ! java $KAFKA_JAVA_OPTS -cp "$KAFKA_HOME/jars/*" kafka.admin.ConfigCommand \
        --bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter --entity-type users --entity-name "$KAFKA_SASL_USER" \
        --add-config "$mechanism=[password=$password]" </dev/null >>"$KAFKA_DIR/scram.log" 2>&1; then
      log_tail "$KAFKA_DIR/scram.log" 15
      return 1
    fi
  done
  echo "$want" >"$done_file"
}

kafka_start() {
  kafka_tls_files
  mkdir -p "$KAFKA_DIR"
  kafka_properties >"$KAFKA_DIR/server.properties.next"
  if pid_alive "$KAFKA_PIDFILE"; then
    if cmp -s "$KAFKA_DIR/server.properties.next" "$KAFKA_DIR/server.properties"; then
      rm -f "$KAFKA_DIR/server.properties.next"
      if kafka_ready >/dev/null 2>&1 && kafka_secure_ports_open; then
        log "kafka: already running (pid $(cat "$KAFKA_PIDFILE"))"
      else
        log "kafka: pid $(cat "$KAFKA_PIDFILE") alive but not answering yet; waiting"
        wait_ready kafka "$KAFKA_PIDFILE" "$KAFKA_LOG" "$TIMEOUT" kafka_ready || return 1
        wait_ready "kafka (SASL and SSL listeners)" "$KAFKA_PIDFILE" "$KAFKA_LOG" 30 kafka_secure_ports_open || return 1
      fi
      kafka_scram_users
      return
    fi
    # Started from an older server.properties (e.g. before the SASL and SSL listeners).
    log "kafka: pid $(cat "$KAFKA_PIDFILE") runs an older configuration; restarting it with the new one"
    kafka_stop
  fi
  [ -f "$KAFKA_HOME/.complete" ] || die "kafka: jars missing in $KAFKA_HOME"
  require_free_port "$KAFKA_PORT" kafka
  require_free_port "$KAFKA_CONTROLLER_PORT" "kafka controller"
  require_free_port "$KAFKA_SASL_PORT" "kafka SASL listener"
  require_free_port "$KAFKA_SSL_PORT" "kafka SSL listener"
  mkdir -p "$KAFKA_DIR/data"
  mv -f "$KAFKA_DIR/server.properties.next" "$KAFKA_DIR/server.properties"
  chmod 600 "$KAFKA_DIR/server.properties"
  local cp="$KAFKA_HOME/jars/*"
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    local cluster_id="-"
    # As Kafka's own Uuid.randomUuid: redrawn while it starts with "-", which the tool's argument
    # parser reads as an option (one id in 64; it failed a CI run).
    while [ "${cluster_id#-}" != "$cluster_id" ]; do
      cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    log "kafka: formatting storage (cluster id $cluster_id)"
    rm -f "$KAFKA_DIR/scram-users.done"
    # shellcheck disable=SC2086
    if ! java $KAFKA_JAVA_OPTS -cp "$cp" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
        -c "$KAFKA_DIR/server.properties" </dev/null >"$KAFKA_DIR/format.log" 2>&1; then
      log_tail "$KAFKA_DIR/format.log"
      rm -rf "$KAFKA_DIR/data"
      die "kafka: storage format failed"
    fi
  fi
  log "kafka: starting $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (SASL :$KAFKA_SASL_PORT, SSL :$KAFKA_SSL_PORT, controller :$KAFKA_CONTROLLER_PORT)"
  : >"$KAFKA_LOG"
  # shellcheck disable=SC2086
  spawn "$KAFKA_PIDFILE" "$KAFKA_LOG" "$KAFKA_DIR" \
    java $KAFKA_JAVA_OPTS -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS" \
    -Dorg.slf4j.simpleLogger.log.org.apache.kafka.common.config=warn \
    -cp "$cp" kafka.Kafka "$KAFKA_DIR/server.properties"
  wait_ready kafka "$KAFKA_PIDFILE" "$KAFKA_LOG" "$TIMEOUT" kafka_ready || return 1
  wait_ready "kafka (SASL and SSL listeners)" "$KAFKA_PIDFILE" "$KAFKA_LOG" 30 kafka_secure_ports_open || return 1
  kafka_scram_users
}

kafka_stop() {
  stop_pid kafka "$KAFKA_PIDFILE" 30
}
