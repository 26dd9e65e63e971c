package node

import (
	"fmt"

	"github.com/peer-project/peer/swarm"
)

// Caps are a node's bandwidth caps in chunk bytes per second, over all
// peers and for each peer; 0 means no cap. Config's UploadRate,
// DownloadRate, PeerUploadRate and PeerDownloadRate set them at the start.
type Caps struct {
	UploadRate, DownloadRate, PeerUploadRate, PeerDownloadRate int64
}

// SetCaps changes the node's caps at run time, for the transfers running
// (from their next burst, a tenth of a second's worth of the old cap) and
// those to come. A negative cap is refused and changes nothing; after
// Close it returns ErrClosed. It does not block and is safe for concurrent
// use. Config() still reports the caps the node started with.
func (n *Node) SetCaps(c Caps) error {
	if n.isClosed() {
		return ErrClosed
	}
	if c.UploadRate < 0 || c.DownloadRate < 0 || c.PeerUploadRate < 0 || c.PeerDownloadRate < 0 {
		return fmt.Errorf("node: caps %+v: a cap is 0 (none) or more bytes per second", c)
	}
	return n.swarm.SetRates(swarm.Rates{
		Upload: c.UploadRate, Download: c.DownloadRate, PeerUpload: c.PeerUploadRate, PeerDownload: c.PeerDownloadRate,
	})
}

// Caps returns the caps in force. It is safe for concurrent use.
func (n *Node) Caps() Caps {
	r := n.swarm.Rates()
	return Caps{UploadRate: r.Upload, DownloadRate: r.Download, PeerUploadRate: r.PeerUpload, PeerDownloadRate: r.PeerDownload}
}
