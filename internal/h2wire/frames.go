package h2wire

import "golang.org/x/net/http2"

// WriteBlock frames an encoded header block for stream id as one HEADERS
// frame followed by as many CONTINUATION frames as the peer's maximum
// frame size needs (RFC 9113 section 4.3); end sets END_STREAM.
func WriteBlock(fr *http2.Framer, id uint32, blk []byte, maxFrame uint32, end bool) {
	limit := int(maxFrame)
	first := blk[:min(len(blk), limit)]
	blk = blk[len(first):]
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(blk) == 0})
	for len(blk) > 0 {
		chunk := blk[:min(len(blk), limit)]
		blk = blk[len(chunk):]
		fr.WriteContinuation(id, len(blk) == 0, chunk)
	}
}
