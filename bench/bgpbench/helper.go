package bgpbench

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/straitlb/strait/bgp"
	"github.com/straitlb/strait/bgp/gobgp"
	"github.com/straitlb/strait/internal/linerpc"
)

// Speaker kinds a helper runs.
const (
	KindStrait = "strait" // Strait's bgp/gobgp.Speaker
	KindGoBGP  = "gobgp"  // a bare GoBGP server fed with AddPath/DeletePath
)

// request is one JSON line to a helper.
type request struct {
	Op string // start, set

	// start
	Kind   string
	NodeIP netip.Addr
	Peer   netip.Addr

	// set: advertise exactly prefixes 0..N-1 (see Prefix)
	N int
}

// response is the helper's JSON line for a request. Start and Returned are
// wall-clock UnixNano: just before the speaker call and just after it
// returned.
type response struct {
	Err      string
	Start    int64
	Returned int64
}

// Prefix returns the i-th benchmark prefix: a /32 counting up from
// 198.18.0.0 (198.18.0.0/15 holds 131072).
func Prefix(i int) netip.Prefix {
	b := [4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)}
	return netip.PrefixFrom(netip.AddrFrom4(b), 32)
}

// setter applies a desired prefix count.
type setter interface {
	set(ctx context.Context, n int) (start, returned time.Time, err error)
	close()
}

// ServeHelper is the speaker side: it runs inside the node namespace and
// serves JSON-line requests from in until in closes.
func ServeHelper(in io.Reader, out io.Writer) error {
	ctx := context.Background()
	var sp setter
	defer func() {
		if sp != nil {
			sp.close()
		}
	}()
	return linerpc.Serve(in, out, func(req request) (response, bool) {
		var resp response
		var err error
		switch {
		case req.Op == "start" && sp == nil:
			sp, err = startSpeaker(ctx, req)
		case sp == nil:
			err = fmt.Errorf("%s before start", req.Op)
		case req.Op == "set":
			var s, r time.Time
			s, r, err = sp.set(ctx, req.N)
			resp.Start, resp.Returned = s.UnixNano(), r.UnixNano()
		default:
			err = fmt.Errorf("bad request %q", req.Op)
		}
		if err != nil {
			resp.Err = err.Error()
		}
		return resp, false
	})
}

func startSpeaker(ctx context.Context, req request) (setter, error) {
	switch req.Kind {
	case KindStrait:
		return startStrait(ctx, req)
	case KindGoBGP:
		return startBare(ctx, req)
	}
	return nil, fmt.Errorf("unknown speaker kind %q", req.Kind)
}

// Session parameters shared by both speakers.
const (
	nodeASN      = 64512
	torASN       = 65000
	holdTime     = 9 * time.Second
	connectRetry = time.Second
)

type straitSpeaker struct{ s *gobgp.Speaker }

func startStrait(ctx context.Context, req request) (setter, error) {
	s, err := gobgp.New(ctx, gobgp.Config{NodeIP: req.NodeIP})
	if err != nil {
		return nil, err
	}
	err = s.SetPeers(ctx, []bgp.Peer{{
		Name: "tor", Address: req.Peer, PeerASN: torASN, LocalASN: nodeASN,
		ConnectRetry: connectRetry, HoldTime: holdTime,
	}})
	if err != nil {
		s.Close()
		return nil, err
	}
	return &straitSpeaker{s: s}, nil
}

func (s *straitSpeaker) set(ctx context.Context, n int) (time.Time, time.Time, error) {
	advs := make([]bgp.Advertisement, n)
	for i := range advs {
		advs[i] = bgp.Advertisement{Prefix: Prefix(i)}
	}
	start := time.Now()
	err := s.s.SetAdvertisements(ctx, advs)
	return start, time.Now(), err
}

func (s *straitSpeaker) close() { s.s.Close() }

// bareSpeaker is GoBGP without Strait's wrapper: no policies, one AddPath or
// DeletePath per changed prefix.
type bareSpeaker struct {
	srv *server.BgpServer
	cur int // prefixes 0..cur-1 are announced
}

func startBare(ctx context.Context, req request) (setter, error) {
	srv := server.NewBgpServer()
	go srv.Serve()
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: nodeASN, RouterId: req.NodeIP.String(), ListenPort: -1,
	}})
	if err == nil {
		err = srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
			Conf: &api.PeerConf{NeighborAddress: req.Peer.String(), PeerAsn: torASN, LocalAsn: nodeASN},
			Timers: &api.Timers{Config: &api.TimersConfig{
				ConnectRetry: uint64(connectRetry / time.Second), HoldTime: uint64(holdTime / time.Second),
				KeepaliveInterval: uint64(holdTime / time.Second / 3),
			}},
			AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{
				Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true,
			}}},
		}})
	}
	if err != nil {
		srv.Stop()
		return nil, err
	}
	return &bareSpeaker{srv: srv}, nil
}

func barePath(i int, withdraw bool) (*api.Path, error) {
	p := Prefix(i)
	nlri := bgppkt.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
	attrs := []bgppkt.PathAttributeInterface{
		bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgppkt.NewPathAttributeNextHop("0.0.0.0"),
	}
	return apiutil.NewPath(nlri, withdraw, attrs, time.Now())
}

func (b *bareSpeaker) set(ctx context.Context, n int) (time.Time, time.Time, error) {
	start := time.Now()
	for ; b.cur < n; b.cur++ {
		p, err := barePath(b.cur, false)
		if err == nil {
			_, err = b.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
		}
		if err != nil {
			return start, time.Now(), err
		}
	}
	for ; b.cur > n; b.cur-- {
		p, err := barePath(b.cur-1, true)
		if err == nil {
			err = b.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Path: p})
		}
		if err != nil {
			return start, time.Now(), err
		}
	}
	return start, time.Now(), nil
}

func (b *bareSpeaker) close() { b.srv.Stop() }
