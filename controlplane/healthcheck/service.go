package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/types"
)

// ServiceHealthConfig configures ServiceHealth.
type ServiceHealthConfig struct {
	// Addresses are the node addresses the healthCheckNodePorts listen on,
	// as kube-proxy takes them from nodePortAddresses. Empty means every
	// IPv4 address (0.0.0.0).
	Addresses []netip.Addr
}

// healthChecker is what ServiceHealth asks about the proxier.
type healthChecker interface {
	Health() Status
}

// ServiceHealth serves the healthCheckNodePorts of eTP=Local LoadBalancer
// Services. It is safe for concurrent use.
type ServiceHealth struct {
	cfg   ServiceHealthConfig
	proxy healthChecker
	log   *zap.Logger
	// listen opens one listener; tests replace it.
	listen func(ctx context.Context, network, addr string) (net.Listener, error)

	mu       sync.RWMutex
	services map[types.NamespacedName]*hcInstance
}

type hcInstance struct {
	port      uint16
	servers   []*http.Server
	addrs     []net.Addr
	endpoints int // local ready endpoints
}

// NewServiceHealth returns a ServiceHealth whose answers include proxy's
// health (serviceProxyHealthy).
func NewServiceHealth(cfg ServiceHealthConfig, proxy *ProxyHealth, log *zap.Logger) (*ServiceHealth, error) {
	if proxy == nil {
		return nil, errors.New("create service health: nil proxy health")
	}
	for _, a := range cfg.Addresses {
		if !a.IsValid() {
			return nil, errors.New("create service health: invalid address")
		}
	}
	if log == nil {
		log = zap.NewNop()
	}
	lc := &net.ListenConfig{}
	return &ServiceHealth{
		cfg:      cfg,
		proxy:    proxy,
		log:      log.With(zap.String("server", "service-healthcheck")),
		listen:   lc.Listen,
		services: make(map[types.NamespacedName]*hcInstance),
	}, nil
}

// SyncServices makes exactly the given Services have a health check, each
// on its healthCheckNodePort: servers of Services no longer listed, or
// whose port changed, are closed; new ones are opened. A Service whose port
// cannot be opened is left out (and tried again on the next call) and its
// error returned; the others are served regardless.
func (s *ServiceHealth) SyncServices(ports map[types.NamespacedName]uint16) map[types.NamespacedName]error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nsn, inst := range s.services {
		if port, ok := ports[nsn]; !ok || port != inst.port {
			s.log.Info("closing healthcheck", zap.Stringer("service", nsn), zap.Uint16("port", inst.port))
			inst.close(s.log)
			delete(s.services, nsn)
		}
	}
	var errs map[types.NamespacedName]error
	for nsn, port := range ports {
		if s.services[nsn] != nil {
			continue
		}
		inst, err := s.open(nsn, port)
		if err != nil {
			if errs == nil {
				errs = make(map[types.NamespacedName]error)
			}
			errs[nsn] = err
			continue
		}
		s.log.Info("opened healthcheck", zap.Stringer("service", nsn), zap.Uint16("port", port))
		s.services[nsn] = inst
	}
	return errs
}

// SyncEndpoints sets the number of ready endpoints on this node of each
// Service; Services not listed have none.
func (s *ServiceHealth) SyncEndpoints(local map[types.NamespacedName]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nsn, inst := range s.services {
		inst.endpoints = local[nsn]
	}
}

// Close closes every health check server.
func (s *ServiceHealth) Close() {
	s.SyncServices(nil)
}

// Addrs returns the addresses the health check of nsn listens on.
func (s *ServiceHealth) Addrs(nsn types.NamespacedName) []net.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if inst := s.services[nsn]; inst != nil {
		return append([]net.Addr(nil), inst.addrs...)
	}
	return nil
}

func (s *ServiceHealth) open(nsn types.NamespacedName, port uint16) (*hcInstance, error) {
	network, hosts := "tcp4", []string{"0.0.0.0"}
	if len(s.cfg.Addresses) > 0 {
		network, hosts = "tcp", nil
		for _, a := range s.cfg.Addresses {
			hosts = append(hosts, a.String())
		}
	}
	inst := &hcInstance{port: port}
	for _, host := range hosts {
		addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
		ln, err := s.listen(context.Background(), network, addr)
		if err != nil {
			inst.close(s.log)
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		srv := &http.Server{Handler: s.handler(nsn), ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(s.log)}
		inst.servers = append(inst.servers, srv)
		inst.addrs = append(inst.addrs, ln.Addr())
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("healthcheck server failed", zap.Stringer("service", nsn), zap.Stringer("address", ln.Addr()), zap.Error(err))
			}
		}()
	}
	return inst, nil
}

func (inst *hcInstance) close(log *zap.Logger) {
	for _, srv := range inst.servers {
		if err := srv.Close(); err != nil {
			log.Error("closing healthcheck server", zap.Error(err))
		}
	}
}

// handler answers as kube-proxy's hcHandler.
func (s *ServiceHealth) handler(nsn types.NamespacedName) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.RLock()
		inst, ok := s.services[nsn]
		count := 0
		if ok {
			count = inst.endpoints
		}
		s.mu.RUnlock()
		if !ok {
			s.log.Error("request for a closed healthcheck", zap.Stringer("service", nsn))
			return
		}
		healthy := s.proxy.Health().Healthy

		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(count))
		if count != 0 && healthy {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = fmt.Fprint(w, ServiceBody(nsn, count, healthy))
	})
}

// ServiceBody is kube-proxy's health check body, byte for byte.
func ServiceBody(nsn types.NamespacedName, localEndpoints int, proxyHealthy bool) string {
	return fmt.Sprintf("{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %v\n}",
		nsn.Namespace, nsn.Name, localEndpoints, proxyHealthy)
}
