using System.Buffers;
using System.Buffers.Binary;

namespace IpvlanCni.Netlink;

/// <summary>
/// The request/reply loop over one transport: numbers each request, sends it, and collects the replies that carry
/// its sequence number and our port id until NLMSG_DONE (a dump) or the ACK (everything else is sent with
/// NLM_F_ACK). NLMSG_ERROR becomes a <see cref="NetlinkException"/>; an interrupted dump is run again.
/// Not thread-safe; synchronous.
/// </summary>
public sealed class NetlinkConnection(INetlinkTransport transport) : IDisposable
{
    /// <summary>How many times a dump that the kernel flagged NLM_F_DUMP_INTR is tried before giving up.</summary>
    public const int DumpAttempts = 10;

    uint _sequence = (uint)Environment.TickCount;

    public INetlinkTransport Transport { get; } = transport;

    /// <summary>Requests sent so far (a retried dump counts each attempt).</summary>
    public int RequestCount { get; private set; }

    /// <summary>Sends the request and returns the reply messages (none for a plain ACK).</summary>
    /// <param name="operation">What the caller was doing, for the exception ("create link eth0").</param>
    public IReadOnlyList<NetlinkMessage> Execute(in NetlinkWriter request, string operation) =>
        Run(request, operation, notFoundIsAnswer: false)!;

    /// <summary>
    /// Like <see cref="Execute"/>, but "no such object" (<see cref="NetlinkException.IsNotFoundErrno"/>) returns null
    /// instead of throwing: for lookups and idempotent deletes it is a normal answer, and a thrown exception costs
    /// far more than the round trip in a short-lived process.
    /// </summary>
    public IReadOnlyList<NetlinkMessage>? ExecuteUnlessNotFound(in NetlinkWriter request, string operation) =>
        Run(request, operation, notFoundIsAnswer: true);

    IReadOnlyList<NetlinkMessage>? Run(in NetlinkWriter request, string operation, bool notFoundIsAnswer)
    {
        bool dump = (request.Flags & NetlinkMessageFlags.Dump) == NetlinkMessageFlags.Dump;
        var message = request.Message;
        // Requests carry NLM_F_REQUEST; non-dumps also NLM_F_ACK so that success ends with an explicit reply.
        var flags = request.Flags | NetlinkMessageFlags.Request | (dump ? 0 : NetlinkMessageFlags.Ack);
        BinaryPrimitives.WriteUInt16LittleEndian(message[6..], (ushort)flags);
        for (int attempt = 1; ; attempt++)
        {
            uint sequence = ++_sequence;
            BinaryPrimitives.WriteUInt32LittleEndian(message[8..], sequence);
            BinaryPrimitives.WriteUInt32LittleEndian(message[12..], Transport.PortId);
            Transport.Send(message);
            RequestCount++;
            var replies = ReadReplies(sequence, dump, operation, notFoundIsAnswer, out bool interrupted);
            if (!interrupted || replies is null)
                return replies;
            if (attempt == DumpAttempts)
                throw new NetlinkException(operation, 4 /* EINTR */, $"dump interrupted {DumpAttempts} times in a row");
        }
    }

    /// <returns>The replies; null when the kernel answered "not found" and <paramref name="notFoundIsAnswer"/>.</returns>
    List<NetlinkMessage>? ReadReplies(uint sequence, bool dump, string operation, bool notFoundIsAnswer, out bool interrupted)
    {
        var replies = new List<NetlinkMessage>();
        interrupted = false;
        Span<byte> probe = stackalloc byte[16];
        while (true)
        {
            int size = Transport.Receive(probe, peek: true);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(size, 16));
            try
            {
                int received = Transport.Receive(buffer.AsSpan(0, Math.Max(size, 16)), peek: false);
                var reader = new MessageReader(buffer.AsSpan(0, received));
                while (reader.Next())
                {
                    // Replies to an earlier, abandoned request or notifications for someone else: not ours.
                    if (reader.Sequence != sequence || reader.PortId != Transport.PortId)
                        continue;
                    if ((reader.Flags & NetlinkMessageFlags.DumpInterrupted) != 0)
                        interrupted = true;
                    switch (reader.Type)
                    {
                        case NetlinkMessageType.Error:
                            var error = NetlinkError.Decode(reader.Payload, reader.Flags);
                            if (error.Errno == 0)
                                return replies; // the ACK
                            if (notFoundIsAnswer && NetlinkException.IsNotFoundErrno(error.Errno))
                                return null;
                            throw new NetlinkException(operation, error.Errno, error.ExtendedAck);
                        case NetlinkMessageType.Done:
                            // A dump that failed reports -errno in the int after the header, and the ext-ack TLVs after that.
                            if (reader.Payload.Length >= sizeof(int))
                            {
                                int status = BinaryPrimitives.ReadInt32LittleEndian(reader.Payload);
                                if (status < 0)
                                {
                                    var done = NetlinkError.DecodeDone(reader.Payload, reader.Flags);
                                    if (notFoundIsAnswer && NetlinkException.IsNotFoundErrno(done.Errno))
                                        return null;
                                    throw new NetlinkException(operation, done.Errno, done.ExtendedAck);
                                }
                            }
                            return replies;
                        case NetlinkMessageType.Noop:
                            break;
                        case NetlinkMessageType.Overrun:
                            throw new NetlinkException(operation, 105 /* ENOBUFS */, "netlink overrun");
                        default:
                            replies.Add(reader.ToMessage());
                            break;
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    public void Dispose() => Transport.Dispose();
}
