package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A peer that announces a huge frame and then sends little must not make
// the server allocate what it announced, and before the hello only small
// frames are read at all.
func TestReadFrameMemoryFollowsTheBytes(t *testing.T) {
	hdr := binary.BigEndian.AppendUint32(nil, maxPeerFrame)
	in := append(hdr, bytes.Repeat([]byte{1}, 1000)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := readFrame(bytes.NewReader(in), nil)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a truncated frame was read")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
		t.Errorf("a frame announcing %d bytes with 1000 sent allocated %d bytes", maxPeerFrame, got)
	}
	hello := binary.BigEndian.AppendUint32(nil, maxControlFrame+1)
	if _, _, err := readFrameMax(bytes.NewReader(hello), nil, maxControlFrame); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("a hello over the control frame limit: %v", err)
	}
}

// FuzzPeerFrames: any byte stream is read frame by frame without a panic;
// each frame re-encodes to the same bytes, and its payload decodes (or
// fails to) as the receiver decodes it.
func FuzzPeerFrames(f *testing.F) {
	hello, _ := json.Marshal(peerHello{Magic: peerMagic, ClusterID: 7, From: 2, To: 1})
	seed, _ := encodeFrame(nil, outFrame{typ: frameHello, payload: hello})
	msg, _ := encodeFrame(nil, outFrame{typ: frameRaft, msg: &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), To: proto.Uint64(1), From: proto.Uint64(2)}})
	f.Add(seed)
	f.Add(append(append([]byte{}, seed...), msg...))
	f.Add([]byte{0, 0, 0, 9, frameHeartbeats, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			typ, payload, err := readFrameMax(r, nil, 1<<20)
			if err != nil {
				return
			}
			enc, err := encodeFrame(nil, outFrame{typ: typ, payload: payload})
			if err != nil {
				t.Fatal(err)
			}
			typ2, payload2, err := readFrameMax(bytes.NewReader(enc), nil, 1<<20)
			if err != nil || typ2 != typ || !bytes.Equal(payload2, payload) {
				t.Fatalf("frame %d/%x does not round-trip: %d/%x %v", typ, payload, typ2, payload2, err)
			}
			switch typ {
			case frameHello:
				var h peerHello
				_ = json.Unmarshal(payload, &h)
			case frameRaft:
				_ = proto.Unmarshal(payload, &raftpb.Message{})
			}
		}
	})
}
