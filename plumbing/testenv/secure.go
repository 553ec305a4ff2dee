package testenv

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// SecureKafkaEnv is the secured side of the test Kafka (deploy/local/testenv.sh): a SASL_SSL
// listener (SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN for Username/Password) and a mutual-TLS
// listener, both with a server certificate from a throw-away CA made for the run.
type SecureKafkaEnv struct {
	SASLSSLBrokers []string // SASL_SSL, no client certificate asked for
	MTLSBrokers    []string // SSL, a client certificate signed by CAFile required
	CAFile         string   // PEM, the CA that signed the servers' and the client's certificates
	CertFile       string   // PEM client certificate
	KeyFile        string   // PEM client key (unencrypted PKCS#8)
	WrongCAFile    string   // PEM, an unrelated CA: verifying the servers with it must fail
	Username       string
	Password       string
}

// SecureKafka returns the secured test Kafka, or skips/fails the test like Kafka does.
func SecureKafka(t testing.TB) SecureKafkaEnv {
	t.Helper()
	e := SecureKafkaEnv{
		SASLSSLBrokers: list(os.Getenv("TEST_KAFKA_SASL_SSL_BROKERS")),
		MTLSBrokers:    list(os.Getenv("TEST_KAFKA_MTLS_BROKERS")),
		CAFile:         os.Getenv("TEST_KAFKA_TLS_CA_FILE"),
		CertFile:       os.Getenv("TEST_KAFKA_TLS_CERT_FILE"),
		KeyFile:        os.Getenv("TEST_KAFKA_TLS_KEY_FILE"),
		WrongCAFile:    os.Getenv("TEST_KAFKA_TLS_WRONG_CA_FILE"),
		Username:       os.Getenv("TEST_KAFKA_SASL_USERNAME"),
		Password:       os.Getenv("TEST_KAFKA_SASL_PASSWORD"),
	}
	require(t, "secured Kafka", [][2]string{
		{"TEST_KAFKA_SASL_SSL_BROKERS", strings.Join(e.SASLSSLBrokers, ",")},
		{"TEST_KAFKA_MTLS_BROKERS", strings.Join(e.MTLSBrokers, ",")},
		{"TEST_KAFKA_TLS_CA_FILE", e.CAFile},
		{"TEST_KAFKA_TLS_CERT_FILE", e.CertFile},
		{"TEST_KAFKA_TLS_KEY_FILE", e.KeyFile},
		{"TEST_KAFKA_TLS_WRONG_CA_FILE", e.WrongCAFile},
		{"TEST_KAFKA_SASL_USERNAME", e.Username},
		{"TEST_KAFKA_SASL_PASSWORD", e.Password},
	})
	reachable(t, "secured Kafka (SASL_SSL)", "TEST_KAFKA_SASL_SSL_BROKERS", e.SASLSSLBrokers[0])
	reachable(t, "secured Kafka (mTLS)", "TEST_KAFKA_MTLS_BROKERS", e.MTLSBrokers[0])
	return e
}

func list(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// require skips/fails the test unless every variable ({name, value}) is set; it names the
// first one missing.
func require(t testing.TB, what string, vars [][2]string) {
	t.Helper()
	for _, v := range vars {
		if v[1] == "" {
			unavailable(t, what, v[0])
		}
	}
}

// reachable skips/fails the test unless addr accepts a TCP connection.
func reachable(t testing.TB, what, variable, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		unavailable(t, what+" at "+addr+" ("+err.Error()+")", variable)
	}
	c.Close()
}

// RedisTLSEnv is the test Redis that speaks only TLS and lets in only one ACL user (the default
// user is off, so a client without Username/Password gets NOAUTH). It checks a client
// certificate signed by CAFile when one is given, and does not require one.
type RedisTLSEnv struct {
	Addr     string
	CAFile   string // PEM, the CA that signed the server's certificate (and CertFile)
	CertFile string // PEM client certificate (optional for this server)
	KeyFile  string // PEM client key
	Username string
	Password string
}

// RedisTLS returns the TLS + ACL test Redis, or skips/fails the test like Redis does.
func RedisTLS(t testing.TB) RedisTLSEnv {
	t.Helper()
	e := RedisTLSEnv{
		Addr:     os.Getenv("TEST_REDIS_TLS_ADDR"),
		CAFile:   os.Getenv("TEST_REDIS_TLS_CA_FILE"),
		CertFile: os.Getenv("TEST_REDIS_TLS_CERT_FILE"),
		KeyFile:  os.Getenv("TEST_REDIS_TLS_KEY_FILE"),
		Username: os.Getenv("TEST_REDIS_USERNAME"),
		Password: os.Getenv("TEST_REDIS_PASSWORD"),
	}
	require(t, "Redis with TLS and ACL", [][2]string{
		{"TEST_REDIS_TLS_ADDR", e.Addr},
		{"TEST_REDIS_TLS_CA_FILE", e.CAFile},
		{"TEST_REDIS_TLS_CERT_FILE", e.CertFile},
		{"TEST_REDIS_TLS_KEY_FILE", e.KeyFile},
		{"TEST_REDIS_USERNAME", e.Username},
		{"TEST_REDIS_PASSWORD", e.Password},
	})
	reachable(t, "Redis with TLS and ACL", "TEST_REDIS_TLS_ADDR", e.Addr)
	return e
}

// RedisSentinelEnv is the test Sentinel group: three Sentinels (quorum 2) watching a primary
// with one replica under MasterName. Plain TCP, no auth.
type RedisSentinelEnv struct {
	Addrs      []string // the Sentinels
	MasterName string
}

// RedisSentinel returns the test Sentinel group, or skips/fails the test like Redis does.
func RedisSentinel(t testing.TB) RedisSentinelEnv {
	t.Helper()
	e := RedisSentinelEnv{Addrs: list(os.Getenv("TEST_REDIS_SENTINEL_ADDRS")), MasterName: os.Getenv("TEST_REDIS_MASTER_NAME")}
	require(t, "Redis Sentinel", [][2]string{
		{"TEST_REDIS_SENTINEL_ADDRS", strings.Join(e.Addrs, ",")},
		{"TEST_REDIS_MASTER_NAME", e.MasterName},
	})
	for _, a := range e.Addrs {
		reachable(t, "Redis Sentinel", "TEST_REDIS_SENTINEL_ADDRS", a)
	}
	return e
}

// RedisCluster returns the three primaries of the test Redis Cluster (each has a replica), or
// skips/fails the test like Redis does. Plain TCP, no auth.
func RedisCluster(t testing.TB) []string {
	t.Helper()
	addrs := list(os.Getenv("TEST_REDIS_CLUSTER_ADDRS"))
	if len(addrs) == 0 {
		unavailable(t, "Redis Cluster", "TEST_REDIS_CLUSTER_ADDRS")
	}
	for _, a := range addrs {
		reachable(t, "Redis Cluster", "TEST_REDIS_CLUSTER_ADDRS", a)
	}
	return addrs
}
