package prometheus

import (
	"fmt"
	"net/http"
	"sync"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/sigv4"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/field"
	"github.com/canaryd/canaryd/internal/secretfile"
)

// SigV4 is the sigv4 library's configuration (the keys of Prometheus' own remote_write
// sigv4, inlined) with the keys also from files. (A named field, not an embedded one:
// the library type's UnmarshalYAML and Validate would be promoted and skip the files.)
type SigV4 struct {
	SigV4Config sigv4.SigV4Config `yaml:",inline"`
	// AccessKeyFile and SecretKeyFile name files holding the access key ID and the
	// secret access key alone (a Kubernetes secret volume), instead of access_key and
	// secret_key: read at start and again whenever their modification time or size
	// changes, so rotated keys sign the next request without a restart.
	AccessKeyFile string `yaml:"access_key_file,omitempty"`
	SecretKeyFile string `yaml:"secret_key_file,omitempty"`
}

// validate adds sigv4's errors to es under key.
func (s *SigV4) validate(es *field.Errors, key string) {
	if s.SigV4Config.AccessKey != "" && s.AccessKeyFile != "" {
		es.Add(field.Join(key, "access_key_file"), "give access_key or access_key_file, not both")
	}
	if s.SigV4Config.SecretKey != "" && s.SecretKeyFile != "" {
		es.Add(field.Join(key, "secret_key_file"), "give secret_key or secret_key_file, not both")
	}
	// The library's own checks, a file standing for the key it holds.
	c := s.SigV4Config
	if s.AccessKeyFile != "" {
		c.AccessKey = s.AccessKeyFile
	}
	if s.SecretKeyFile != "" {
		c.SecretKey = commoncfg.Secret(s.SecretKeyFile)
	}
	if err := c.Validate(); err != nil {
		es.Add(key, "%v", err)
	}
}

// newSigV4Transport signs every request through next. Keys from files are read at once
// and again when they change (rotatingSigV4); otherwise the library's round tripper
// is used as it is.
func newSigV4Transport(s *SigV4, next http.RoundTripper, logger *zap.Logger) (http.RoundTripper, error) {
	if s.AccessKeyFile == "" && s.SecretKeyFile == "" {
		cfg := s.SigV4Config
		return sigv4.NewSigV4RoundTripper(&cfg, next)
	}
	source := func(name, inline, file string) (*secretfile.Source, error) {
		if file == "" {
			return secretfile.Fixed(inline), nil
		}
		src, err := secretfile.Open("sigv4 "+name, file, logger)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return src, nil
	}
	r := &rotatingSigV4{cfg: s.SigV4Config, next: next, logger: logger}
	var err error
	if r.access, err = source("access_key_file", s.SigV4Config.AccessKey, s.AccessKeyFile); err != nil {
		return nil, err
	}
	if r.secret, err = source("secret_key_file", string(s.SigV4Config.SecretKey), s.SecretKeyFile); err != nil {
		return nil, err
	}
	if _, err := r.current(); err != nil {
		return nil, err
	}
	return r, nil
}

// rotatingSigV4 is the library's round tripper for the keys the files hold now, made
// again when a file's key changes (the library fixes its credentials when it is made).
type rotatingSigV4 struct {
	cfg            sigv4.SigV4Config
	next           http.RoundTripper
	access, secret *secretfile.Source
	logger         *zap.Logger

	mu                   sync.Mutex
	rt                   http.RoundTripper
	accessKey, secretKey string
}

// current is the round tripper for the files' keys; when the new keys cannot make one,
// the last one stays in use (its keys were good) and the log says why.
func (r *rotatingSigV4) current() (http.RoundTripper, error) {
	access, secret := r.access.Get(), r.secret.Get()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rt != nil && access == r.accessKey && secret == r.secretKey {
		return r.rt, nil
	}
	cfg := r.cfg
	cfg.AccessKey, cfg.SecretKey = access, commoncfg.Secret(secret)
	rt, err := sigv4.NewSigV4RoundTripper(&cfg, r.next)
	if err != nil {
		if r.rt == nil {
			return nil, err
		}
		r.logger.Warn("sigv4 keys changed but cannot sign; the last keys stay in use", zap.Error(err))
		return r.rt, nil
	}
	r.rt, r.accessKey, r.secretKey = rt, access, secret
	return rt, nil
}

func (r *rotatingSigV4) RoundTrip(req *http.Request) (*http.Response, error) {
	rt, err := r.current()
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(req)
}
