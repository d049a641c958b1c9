using System.Buffers.Binary;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Netlink;
using IpvlanCni.Netlink.Route;

namespace IpvlanCni.Kernel.Tests.Network;

/// <summary>Errors as the real kernel sends them decode with errno and extended-ack text, and the fake sends the same bytes.</summary>
public sealed class NetlinkErrorTests : KernelTest
{
    const string IndexFilterRefused = "Filter by device index not supported for link dumps";

    /// <summary>
    /// A link dump filtered by ifindex on a strict-checking socket fails inside the dump callback: the kernel ends it
    /// with NLMSG_DONE carrying -EINVAL and the ext-ack TLV right after the errno (netlink_dump_done), not an nlmsgerr.
    /// </summary>
    [Fact]
    public void A_failed_dump_keeps_the_kernels_errno_and_text_and_the_fake_scripts_the_same_bytes()
    {
        using var node = new TestNode();
        var recording = node.Namespace.Run(() => new RecordingTransport(NetlinkSocket.Open()));
        using var connection = new NetlinkConnection(recording);

        var e = Assert.Throws<NetlinkException>(() => connection.Execute(IndexFilteredLinkDump(), "list links"));
        Assert.Equal(22, e.Errno);
        Assert.Equal(IndexFilterRefused, e.ExtendedAck);
        Assert.Contains(IndexFilterRefused, e.Message);

        byte[] real = recording.Received.Single();
        uint sequence = BinaryPrimitives.ReadUInt32LittleEndian(real.AsSpan(8));
        byte[] fake = NetlinkFrames.FailedDump(sequence, recording.PortId, 22, IndexFilterRefused);
        Assert.Equal(Convert.ToHexString(fake), Convert.ToHexString(real));
    }

    static NetlinkWriter IndexFilteredLinkDump()
    {
        var w = new NetlinkWriter(NetlinkMessageType.GetLink, NetlinkMessageFlags.Dump);
        new LinkHeader(0, 0, 1, 0, 0).Write(w.Reserve(LinkHeader.Size));
        return w;
    }
}
