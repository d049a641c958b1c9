using System.Buffers.Binary;
using IpvlanCni.Netlink.Route;

namespace IpvlanCni.Netlink.Tests;

public sealed class ConnectionTests
{
    const uint Port = 0x5CE1;

    static byte[] Payload(int index)
    {
        var bytes = new byte[LinkHeader.Size];
        new LinkHeader(0, 1, index, 0, 0).Write(bytes);
        return bytes;
    }

    static IReadOnlyList<NetlinkMessage> Dump(NetlinkConnection connection)
    {
        using var w = new NetlinkWriter(NetlinkMessageType.GetLink, NetlinkMessageFlags.Dump);
        new LinkHeader(0, 0, 0, 0, 0).Write(w.Reserve(LinkHeader.Size));
        return connection.Execute(w, "list links");
    }

    static IReadOnlyList<NetlinkMessage> Delete(NetlinkConnection connection)
    {
        using var w = new NetlinkWriter(NetlinkMessageType.DeleteLink, NetlinkMessageFlags.None);
        new LinkHeader(0, 0, 7, 0, 0).Write(w.Reserve(LinkHeader.Size));
        return connection.Execute(w, "delete link #7");
    }

    static int Index(NetlinkMessage m) => LinkHeader.Read(m.Payload).Index;

    [Fact]
    public void A_dump_spread_over_several_datagrams_is_collected_until_done()
    {
        var kernel = new ScriptedTransport(Port).OnRequest(r =>
        [
            NetlinkFrames.Datagram(
                NetlinkFrames.Message(NetlinkMessageType.NewLink, NetlinkMessageFlags.Multi, r.Sequence, Port, Payload(1)),
                NetlinkFrames.Message(NetlinkMessageType.NewLink, NetlinkMessageFlags.Multi, r.Sequence, Port, Payload(2))),
            NetlinkFrames.Message(NetlinkMessageType.NewLink, NetlinkMessageFlags.Multi, r.Sequence, Port, Payload(3)),
            NetlinkFrames.Datagram(
                NetlinkFrames.Message(NetlinkMessageType.NewLink, NetlinkMessageFlags.Multi, r.Sequence, Port, Payload(4)),
                NetlinkFrames.Done(r.Sequence, Port)),
        ]);
        using var connection = new NetlinkConnection(kernel);
        Assert.Equal([1, 2, 3, 4], Dump(connection).Select(Index));

        var request = Assert.Single(kernel.Requests);
        Assert.Equal(NetlinkMessageType.GetLink, request.Type);
        Assert.Equal(NetlinkMessageFlags.Request | NetlinkMessageFlags.Dump, request.Flags);
        Assert.Equal(Port, request.PortId);
        Assert.Equal(1, connection.RequestCount);
        Assert.Equal(request.Bytes.Length, (int)BinaryPrimitives.ReadUInt32LittleEndian(request.Bytes));
    }

    [Fact]
    public void Requests_ask_for_an_ack_and_get_increasing_sequence_numbers()
    {
        var kernel = new ScriptedTransport(Port).ReplyAck().ReplyAck();
        using var connection = new NetlinkConnection(kernel);
        Assert.Empty(Delete(connection));
        Assert.Empty(Delete(connection));
        Assert.All(kernel.Requests, r => Assert.Equal(NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack, r.Flags));
        Assert.Equal(kernel.Requests[0].Sequence + 1, kernel.Requests[1].Sequence);
        Assert.Equal(2, connection.RequestCount);
    }

    [Fact]
    public void An_error_reply_carries_errno_operation_and_extended_ack()
    {
        var kernel = new ScriptedTransport(Port).ReplyError(19, "Unknown device");
        using var connection = new NetlinkConnection(kernel);
        var e = Assert.Throws<NetlinkException>(() => Delete(connection));
        Assert.Equal(19, e.Errno);
        Assert.True(e.IsNotFound);
        Assert.Equal("delete link #7", e.Operation);
        Assert.Equal("Unknown device", e.ExtendedAck);
        Assert.Equal("delete link #7: ENODEV (No such device) (Unknown device)", e.Message);
    }

    [Fact]
    public void Messages_for_other_sequences_or_ports_are_skipped()
    {
        var kernel = new ScriptedTransport(Port).OnRequest(r =>
        [
            NetlinkFrames.Error(r.Sequence - 1, Port, 17, "stale reply to an abandoned request"),
            NetlinkFrames.Datagram(
                NetlinkFrames.Message(NetlinkMessageType.NewLink, NetlinkMessageFlags.None, r.Sequence, Port + 1, Payload(99)),
                NetlinkFrames.Message(NetlinkMessageType.NewLink, NetlinkMessageFlags.None, r.Sequence, Port, Payload(5))),
            NetlinkFrames.Ack(r.Sequence, Port),
        ]);
        using var connection = new NetlinkConnection(kernel);
        Assert.Equal([5], Delete(connection).Select(Index));
    }

    [Fact]
    public void An_interrupted_dump_is_run_again()
    {
        var kernel = new ScriptedTransport(Port)
            .OnRequest(r =>
            [
                NetlinkFrames.Message(NetlinkMessageType.NewLink, NetlinkMessageFlags.Multi, r.Sequence, Port, Payload(1)),
                NetlinkFrames.Message(NetlinkMessageType.NewLink, NetlinkMessageFlags.Multi | NetlinkMessageFlags.DumpInterrupted, r.Sequence, Port, Payload(2)),
                NetlinkFrames.Done(r.Sequence, Port, NetlinkMessageFlags.Multi | NetlinkMessageFlags.DumpInterrupted),
            ])
            .ReplyDump(NetlinkMessageType.NewLink, Payload(1), Payload(2), Payload(3));
        using var connection = new NetlinkConnection(kernel);
        Assert.Equal([1, 2, 3], Dump(connection).Select(Index));
        Assert.Equal(2, connection.RequestCount);
        Assert.NotEqual(kernel.Requests[0].Sequence, kernel.Requests[1].Sequence);
    }

    [Fact]
    public void A_dump_that_keeps_being_interrupted_gives_up()
    {
        var kernel = new ScriptedTransport(Port);
        for (int i = 0; i < NetlinkConnection.DumpAttempts; i++)
            kernel.OnRequest(r => [NetlinkFrames.Done(r.Sequence, Port, NetlinkMessageFlags.Multi | NetlinkMessageFlags.DumpInterrupted)]);
        using var connection = new NetlinkConnection(kernel);
        var e = Assert.Throws<NetlinkException>(() => Dump(connection));
        Assert.Equal(4, e.Errno);
        Assert.Equal(NetlinkConnection.DumpAttempts, connection.RequestCount);
    }

    /// <summary>
    /// A dump fails in one of two shapes: NLMSG_ERROR (the dump never started) or NLMSG_DONE with -errno and the
    /// ext-ack TLV right after it (the dump callback failed, the common case). Both keep errno and text.
    /// </summary>
    [Fact]
    public void A_dump_error_in_done_or_error_throws_with_errno_and_text()
    {
        var kernel = new ScriptedTransport(Port)
            .OnRequest(r => [NetlinkFrames.Message(NetlinkMessageType.Done, NetlinkMessageFlags.Multi, r.Sequence, Port, BitConverter.GetBytes(-22))])
            .ReplyFailedDump(22, "Filter by device index not supported for link dumps")
            .ReplyError(22, "Invalid values in header for link dump request");
        using var connection = new NetlinkConnection(kernel);
        Assert.Equal(22, Assert.Throws<NetlinkException>(() => Dump(connection)).Errno);
        var done = Assert.Throws<NetlinkException>(() => Dump(connection));
        Assert.Equal((22, "Filter by device index not supported for link dumps"), (done.Errno, done.ExtendedAck));
        Assert.Contains("Invalid values", Assert.Throws<NetlinkException>(() => Dump(connection)).ExtendedAck);
    }

    [Fact]
    public void Real_kernel_error_replies_decode()
    {
        // Captured in the sandbox (Linux 6.1, NETLINK_CAP_ACK + NETLINK_EXT_ACK): a vlan id of 5000, and a duplicate link.
        var erange = Convert.FromHexString(
            "40000000020000036822000003352A88DEFFFFFF4C000000100005066822000003352A881B00010038303231713A20496E76616C696420564C414E2069640000");
        var eexist = Convert.FromHexString("24000000020000016622000003352A88EFFFFFFF58000000100005066622000003352A88");

        var r = new MessageReader(erange);
        Assert.True(r.Next());
        Assert.Equal(NetlinkMessageType.Error, r.Type);
        Assert.Equal(NetlinkMessageFlags.Capped | NetlinkMessageFlags.AckTlvs, r.Flags);
        Assert.Equal(new NetlinkError(34, "8021q: Invalid VLAN id"), NetlinkError.Decode(r.Payload, r.Flags));

        r = new MessageReader(eexist);
        Assert.True(r.Next());
        Assert.Equal(new NetlinkError(17, null), NetlinkError.Decode(r.Payload, r.Flags));

        // The same bytes as the fake kernel would script them: the connection turns them into the exception.
        var kernel = new ScriptedTransport(0x882A3503).OnRequest(req =>
        {
            var bytes = (byte[])erange.Clone();
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), req.Sequence);
            return [bytes];
        });
        using var connection = new NetlinkConnection(kernel);
        var e = Assert.Throws<NetlinkException>(() => Delete(connection));
        Assert.Equal("8021q: Invalid VLAN id", e.ExtendedAck);
    }

    [Fact]
    public void Truncated_error_payloads_throw_decode_exceptions()
    {
        Assert.Throws<NetlinkDecodeException>(() => NetlinkError.Decode(new byte[3], NetlinkMessageFlags.None));
        Assert.Throws<NetlinkDecodeException>(() => NetlinkError.Decode(new byte[8], NetlinkMessageFlags.AckTlvs | NetlinkMessageFlags.Capped));
        // Not capped: the echoed request claims more bytes than there are.
        var uncapped = new byte[20];
        BinaryPrimitives.WriteUInt32LittleEndian(uncapped.AsSpan(4), 200);
        Assert.Throws<NetlinkDecodeException>(() => NetlinkError.Decode(uncapped, NetlinkMessageFlags.AckTlvs));
    }

    [Fact]
    public void The_fake_kernel_fails_instead_of_hanging()
    {
        using var connection = new NetlinkConnection(new ScriptedTransport(Port));
        Assert.Throws<InvalidOperationException>(() => Delete(connection));
    }
}
