using System.Buffers.Binary;
using IpvlanCni.Netlink.Kernel;
using System.Runtime.CompilerServices;

namespace IpvlanCni.Netlink;

/// <summary>The payload of NLMSG_ERROR: an errno (0 = ACK) and the extended-ack text, when the kernel sent one.</summary>
public readonly record struct NetlinkError(int Errno, string? ExtendedAck)
{
    /// <summary>Decodes nlmsgerr: int error, the request's nlmsghdr (and, unless NLM_F_CAPPED, its payload), then NLMSGERR_ATTR_* TLVs when NLM_F_ACK_TLVS.</summary>
    public static NetlinkError Decode(ReadOnlySpan<byte> payload, NetlinkMessageFlags flags)
    {
        int fixedSize = Unsafe.SizeOf<nlmsgerr>();
        if (payload.Length < sizeof(int))
            throw new NetlinkDecodeException($"nlmsgerr: {payload.Length} bytes, need at least 4");
        int error = BinaryPrimitives.ReadInt32LittleEndian(payload);
        string? text = null;
        if ((flags & NetlinkMessageFlags.AckTlvs) != 0)
        {
            if (payload.Length < fixedSize)
                throw new NetlinkDecodeException($"nlmsgerr with TLVs: {payload.Length} bytes, need {fixedSize}");
            int offset = fixedSize;
            if ((flags & NetlinkMessageFlags.Capped) == 0)
            {
                // The whole request was echoed back: skip its payload too.
                uint requestLength = BinaryPrimitives.ReadUInt32LittleEndian(payload[sizeof(int)..]);
                // Bound it before aligning: NLMSG_ALIGN of a length near int.MaxValue overflows to a negative offset.
                if (requestLength < NetlinkAlign.MessageHeaderLength || requestLength > payload.Length
                    || (offset = sizeof(int) + NetlinkAlign.Message((int)requestLength)) > payload.Length)
                    throw new NetlinkDecodeException($"nlmsgerr: echoed request length {requestLength} does not fit");
            }
            var reader = new AttributeReader(payload[offset..]);
            while (reader.Next())
                if (reader.TypeAs<ExtendedAckAttribute>() == ExtendedAckAttribute.Message)
                    text = reader.GetString();
        }
        // The kernel sends -errno.
        return new NetlinkError(-error, text);
    }

    /// <summary>
    /// Decodes the payload of the NLMSG_DONE that ends a failed dump: int -errno, then (NLM_F_ACK_TLVS) the
    /// NLMSGERR_ATTR_* TLVs right after it; no echoed request (net/netlink/af_netlink.c, netlink_dump_done).
    /// </summary>
    public static NetlinkError DecodeDone(ReadOnlySpan<byte> payload, NetlinkMessageFlags flags)
    {
        if (payload.Length < sizeof(int))
            throw new NetlinkDecodeException($"NLMSG_DONE: {payload.Length} bytes, need at least 4");
        int error = BinaryPrimitives.ReadInt32LittleEndian(payload);
        string? text = null;
        if ((flags & NetlinkMessageFlags.AckTlvs) != 0)
        {
            var reader = new AttributeReader(payload[sizeof(int)..]);
            while (reader.Next())
                if (reader.TypeAs<ExtendedAckAttribute>() == ExtendedAckAttribute.Message)
                    text = reader.GetString();
        }
        return new NetlinkError(-error, text);
    }
}
