package dht

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// MDNSService is the DNS-SD service name peer nodes announce on the local
// network.
const MDNSService = "_peer-xfer._udp"

// MDNS finds peer nodes on the local network and connects to them.
type MDNS struct {
	svc    mdns.Service
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// ShouldRunMDNS reports whether a node listening on addrs should announce
// itself on the local network: only when one of them is not loopback. A node
// on loopback, and every test, sends no multicast.
func ShouldRunMDNS(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if !manet.IsIPLoopback(a) {
			return true
		}
	}
	return false
}

// StartMDNS starts mDNS discovery on h and connects to every node it finds,
// calling found (if not nil) after each connection succeeds. Stop it with
// Close.
func StartMDNS(h host.Host, log *slog.Logger, found func(peer.AddrInfo)) (*MDNS, error) {
	ctx, cancel := context.WithCancel(context.Background())
	m := &MDNS{cancel: cancel}
	n := &notifee{ctx: ctx, h: h, log: log, found: found, wg: &m.wg}
	m.svc = mdns.NewMdnsService(h, MDNSService, n)
	if err := m.svc.Start(); err != nil {
		cancel()
		return nil, err
	}
	return m, nil
}

// Close stops discovery and waits for the connections it started. It is
// idempotent.
func (m *MDNS) Close() error {
	var err error
	m.once.Do(func() {
		err = m.svc.Close()
		m.cancel()
		m.wg.Wait()
	})
	return err
}

type notifee struct {
	ctx   context.Context
	h     host.Host
	log   *slog.Logger
	found func(peer.AddrInfo)
	wg    *sync.WaitGroup
}

func (n *notifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == n.h.ID() || n.ctx.Err() != nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		defer cancel()
		if err := n.h.Connect(ctx, ai); err != nil {
			n.log.Debug("mdns: connect", "peer", ai.ID, "err", err)
			return
		}
		if n.found != nil {
			n.found(ai)
		}
	}()
}
