using System.Net;

namespace IpvlanCni.Dhcp;

/// <summary>RFC 2131 figure 5, plus the two ends of a lease's life for the agent.</summary>
public enum DhcpState { Init, Selecting, Requesting, Bound, Renewing, Rebinding, Lost, Released }

/// <summary>A message for the transport: where it goes (the limited broadcast, or a server's address).</summary>
public sealed record DhcpSend(DhcpMessage Message, IPAddress Destination);

/// <summary>
/// A DHCP client as a state machine (RFC 2131 4.4): no sockets, no clock, no threads. The driver feeds it the time,
/// received messages and timer expiries (at <see cref="WakeAt"/>), and sends what it returns.
/// A lease that a NAK or its expiry ends becomes <see cref="DhcpState.Lost"/>, not a new DISCOVER: the pod runs with
/// the old address, so a new one would silently break it; the agent reports the loss instead (CHECK fails).
/// </summary>
public sealed class DhcpClient
{
    /// <summary>Retransmission in SELECTING / REQUESTING: 1, 2, 4, 4 ... s (quicker than RFC 2131's 4, 8, 16 so that an ADD
    /// is not held up by one lost packet).</summary>
    static TimeSpan Backoff(int attempt) => TimeSpan.FromSeconds(Math.Min(4, 1 << Math.Min(attempt, 2)));
    /// <summary>Retransmission in RENEWING / REBINDING: half the time left (RFC 2131 4.4.5), but not under this.</summary>
    static readonly TimeSpan MinimumRetry = TimeSpan.FromSeconds(4);
    const int RequestAttempts = 4;
    static readonly byte[] RequestedParameters =
    [
        DhcpOption.SubnetMask, DhcpOption.Router, DhcpOption.DomainNameServer, DhcpOption.DomainName,
        DhcpOption.LeaseTime, DhcpOption.RenewalTime, DhcpOption.RebindingTime, DhcpOption.ClasslessStaticRoute,
    ];

    readonly Func<uint> _transactionIds;
    uint _xid;
    int _attempt;
    DhcpMessage? _offer;
    DateTimeOffset _requestedAt;

    public DhcpClient(ClientIdentity identity, byte[] hardwareAddress, Func<uint> transactionIds)
    {
        Identity = identity;
        HardwareAddress = hardwareAddress;
        _transactionIds = transactionIds;
    }

    public ClientIdentity Identity { get; }
    public byte[] HardwareAddress { get; }
    public DhcpState State { get; private set; } = DhcpState.Init;
    public DhcpLease? Lease { get; private set; }
    /// <summary>When <see cref="OnTimer"/> is due; MaxValue when nothing is.</summary>
    public DateTimeOffset WakeAt { get; private set; } = DateTimeOffset.MaxValue;
    /// <summary>Why the lease was lost, for the log and CHECK.</summary>
    public string? LostReason { get; private set; }

    /// <summary>INIT -> SELECTING: broadcast a DISCOVER.</summary>
    public DhcpSend Start(DateTimeOffset now)
    {
        if (State is not (DhcpState.Init or DhcpState.Selecting or DhcpState.Requesting))
            throw new InvalidOperationException($"cannot start from {State}");
        State = DhcpState.Selecting;
        _xid = _transactionIds();
        _attempt = 0;
        _offer = null;
        WakeAt = now + Backoff(0);
        return Broadcast(Discover());
    }

    /// <summary>
    /// A lease read back from disk: BOUND, with the timer at T1 (maybe already past: the next timer decides whether
    /// to renew, rebind or give up), or LOST again when it was lost before the restart.
    /// </summary>
    public void Resume(DhcpLease lease, string? lostReason = null)
    {
        if (State != DhcpState.Init)
            throw new InvalidOperationException($"cannot resume from {State}");
        Lease = lease;
        if (lostReason is not null)
        {
            Lose(lostReason);
            return;
        }
        State = DhcpState.Bound;
        WakeAt = lease.RenewAt;
    }

    /// <summary>A message from the network; returns what to send in answer, if anything.</summary>
    public DhcpSend? OnReceive(DhcpMessage message, DateTimeOffset now)
    {
        // Every slave of the master sees every broadcast reply (they share its MAC): only ours count.
        if (message.Op != 2 || message.TransactionId != _xid)
            return null;
        if (message.ClientId is { } echoed && !echoed.AsSpan().SequenceEqual(Identity.ClientId))
            return null;
        switch (State, message.Type)
        {
            case (DhcpState.Selecting, DhcpMessageType.Offer) when !message.YourAddress.Equals(IPAddress.Any) && message.ServerId is not null:
                _offer = message;
                State = DhcpState.Requesting;
                _attempt = 0;
                _requestedAt = now;
                WakeAt = now + Backoff(0);
                return Broadcast(Request(ciaddr: IPAddress.Any, requested: message.YourAddress, serverId: message.ServerId, broadcast: true));
            case (DhcpState.Requesting, DhcpMessageType.Ack):
                return Bind(DhcpLease.FromAck(message, _requestedAt));
            case (DhcpState.Requesting, DhcpMessageType.Nak):
                // RFC 2131 4.4.1: back to INIT.
                State = DhcpState.Init;
                return Start(now);
            case (DhcpState.Renewing or DhcpState.Rebinding, DhcpMessageType.Ack):
                var renewed = DhcpLease.FromAck(message, _requestedAt);
                if (!renewed.Address.Address.Equals(Lease!.Address.Address))
                    return Lose($"the server answered the renewal of {Lease.Address.Address} with another address, {renewed.Address.Address}");
                return Bind(renewed);
            case (DhcpState.Renewing or DhcpState.Rebinding, DhcpMessageType.Nak):
                return Lose($"server {message.ServerId} refused the renewal of {Lease!.Address.Address} (DHCPNAK{(message.Message is { } m ? $": {m}" : "")})");
            default:
                return null;
        }
    }

    /// <summary>The timer at <see cref="WakeAt"/>: retransmit, or move on (T1 renew, T2 rebind, expiry lost).</summary>
    public DhcpSend? OnTimer(DateTimeOffset now)
    {
        if (now < WakeAt)
            return null;
        switch (State)
        {
            case DhcpState.Selecting:
                _attempt++;
                WakeAt = now + Backoff(_attempt);
                return Broadcast(Discover());
            case DhcpState.Requesting when ++_attempt < RequestAttempts:
                WakeAt = now + Backoff(_attempt);
                return Broadcast(Request(IPAddress.Any, _offer!.YourAddress, _offer.ServerId, broadcast: true));
            case DhcpState.Requesting:
                // No ACK to four REQUESTs: start over (RFC 2131 4.4.1).
                State = DhcpState.Init;
                return Start(now);
            case DhcpState.Bound or DhcpState.Renewing or DhcpState.Rebinding:
                return Maintain(now);
            default:
                WakeAt = DateTimeOffset.MaxValue;
                return null;
        }
    }

    /// <summary>DEL: a RELEASE unicast to the server from the leased address (dnsmasq drops one from 0.0.0.0).</summary>
    public DhcpSend? Release()
    {
        var lease = Lease;
        bool held = State is DhcpState.Bound or DhcpState.Renewing or DhcpState.Rebinding;
        State = DhcpState.Released;
        WakeAt = DateTimeOffset.MaxValue;
        if (!held || lease is null)
            return null;
        var release = new DhcpMessage
        {
            Type = DhcpMessageType.Release,
            TransactionId = _transactionIds(),
            ClientAddress = lease.Address.Address,
            ClientHardwareAddress = HardwareAddress,
            ClientId = Identity.ClientId,
            ServerId = lease.ServerId,
        };
        return new DhcpSend(release, lease.ServerId);
    }

    DhcpSend? Maintain(DateTimeOffset now)
    {
        var lease = Lease!;
        if (now >= lease.ExpiresAt)
            return Lose($"the lease of {lease.Address.Address} expired at {lease.ExpiresAt:u} without a renewal");
        if (State != DhcpState.Rebinding && now >= lease.RebindAt)
        {
            State = DhcpState.Rebinding;
            _xid = _transactionIds();
        }
        else if (State == DhcpState.Bound)
        {
            State = DhcpState.Renewing;
            _xid = _transactionIds();
        }
        _requestedAt = now;
        var boundary = State == DhcpState.Renewing ? lease.RebindAt : lease.ExpiresAt;
        var wait = (boundary - now) / 2;
        WakeAt = wait < MinimumRetry ? (now + MinimumRetry < boundary ? now + MinimumRetry : boundary) : now + wait;
        // RENEWING: unicast to the server that granted the lease; REBINDING: broadcast to any (RFC 2131 4.4.5).
        var request = Request(ciaddr: lease.Address.Address, requested: null, serverId: null, broadcast: false);
        return State == DhcpState.Renewing ? new DhcpSend(request, lease.ServerId) : Broadcast(request);
    }

    DhcpSend? Bind(DhcpLease lease)
    {
        Lease = lease;
        State = DhcpState.Bound;
        WakeAt = lease.RenewAt;
        _offer = null;
        return null;
    }

    DhcpSend? Lose(string reason)
    {
        State = DhcpState.Lost;
        LostReason = reason;
        WakeAt = DateTimeOffset.MaxValue;
        return null;
    }

    DhcpMessage Discover() => new()
    {
        Type = DhcpMessageType.Discover,
        TransactionId = _xid,
        Seconds = (ushort)Math.Min(_attempt, ushort.MaxValue),
        Broadcast = true,
        ClientHardwareAddress = HardwareAddress,
        ClientId = Identity.ClientId,
        ParameterRequestList = RequestedParameters,
        MaxMessageSize = 1500,
    };

    DhcpMessage Request(IPAddress ciaddr, IPAddress? requested, IPAddress? serverId, bool broadcast) => new()
    {
        Type = DhcpMessageType.Request,
        TransactionId = _xid,
        Broadcast = broadcast,
        ClientAddress = ciaddr,
        ClientHardwareAddress = HardwareAddress,
        ClientId = Identity.ClientId,
        RequestedAddress = requested,
        ServerId = serverId,
        ParameterRequestList = RequestedParameters,
        MaxMessageSize = 1500,
    };

    static DhcpSend Broadcast(DhcpMessage message) => new(message, IPAddress.Broadcast);
}
