using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using IpvlanCni.Cni;
using IpvlanCni.Ipam;

namespace IpvlanCni.ClusterIpam;

/// <summary>
/// The store on etcd v3 through dotnet-etcd, as thin as it can be: a read is one Txn of ranges (one revision), a
/// commit is one Txn, a lease is LeaseGrant. One gRPC channel per member; a member that refuses or does not answer in
/// its share of the deadline passes the call to the next. Nothing is retried inside gRPC: a commit whose answer is
/// lost surfaces as StoreUnavailableException and the engine reads back.
/// </summary>
public sealed class EtcdKvStore : IKvStore, IDisposable
{
    /// <summary>One member's share of a deadline: a stopped member must not eat the whole request.</summary>
    static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(3);

    readonly (Uri Endpoint, GrpcChannel Channel, EtcdClient Client)[] _members;
    readonly ClusterIpamConfig _config;
    int _current;
    /// <summary>Why our validation last refused a member's certificate (the handshake's exception says only "refused").</summary>
    volatile string? _serverCertificateProblem;

    public EtcdKvStore(ClusterIpamConfig config)
    {
        _config = config;
        _members = [.. config.Endpoints.Select(uri =>
        {
            var channel = GrpcChannel.ForAddress(uri, new GrpcChannelOptions
            {
                HttpHandler = Handler(config, problem => _serverCertificateProblem = problem),
                Credentials = uri.Scheme == "https" ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure,
                MaxRetryAttempts = 0,
                DisposeHttpClient = true,
            });
            return (uri, channel, new EtcdClient(channel.CreateCallInvoker()));
        })];
    }

    /// <summary>etcd's auth token, sent with every call; null until the first call (and after etcd let it expire).</summary>
    volatile Metadata? _metadata;

    static SocketsHttpHandler Handler(ClusterIpamConfig config, Action<string> refused)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(2),
            EnableMultipleHttp2Connections = true,
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
        };
        // Without gRPC's own connection manager: after a failed connect it backs the subchannel off (1 s growing to
        // 120 s) and fails every call meanwhile with "Error connecting to subchannel", so one slow first connect of a
        // fresh agent outlasted a 60 s ADD deadline. Here each call connects through the handler's pool, and Call's
        // loop alone decides when to try again and which member to try.
        handler.Properties["__GrpcLoadBalancingDisabled"] = true;
        if (config.CertFile is { } cert)
            handler.SslOptions.ClientCertificates = [X509Certificate2.CreateFromPem(ReadPem(cert, "etcdCertFile"), ReadPem(config.KeyFile!, "etcdKeyFile"))];
        if (config.CaFile is { } caFile)
        {
            var ca = new X509Certificate2Collection();
            ca.ImportFromPem(ReadPem(caFile, "etcdCaFile"));
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null)
                {
                    refused("the member showed no certificate");
                    return false;
                }
                // Chain to the configured CA only; the host name check of the default validation still applies.
                if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
                {
                    refused($"the member's certificate ({certificate.Subject}) does not name the host of its endpoint");
                    return false;
                }
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(ca);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                if (chain.Build(new X509Certificate2(certificate)))
                    return true;
                refused($"the member's certificate ({certificate.Subject}, issued by {certificate.Issuer}) is not signed by the CA of ipam.etcdCaFile ({caFile})");
                return false;
            };
        }
        return handler;
    }

    /// <summary>
    /// A TLS file through the one bounded reader: a regular file of at most 64 KiB, typed before it is opened, so a
    /// FIFO cannot hang an agent slot and /dev/zero cannot fill its memory.
    /// </summary>
    static string ReadPem(string path, string key)
    {
        try
        {
            return System.Text.Encoding.UTF8.GetString(IpvlanCni.Interop.RegularFile.Read(path));
        }
        catch (IpvlanCni.Interop.UnsafePathException e)
        {
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"ipam.{key}: \"{CniNames.Truncate(path)}\" {e.Reason}");
        }
        catch (IpvlanCni.Interop.SystemCallException e)
        {
            throw new CniException(CniErrorCode.IoFailure, $"ipam.{key}: cannot read \"{CniNames.Truncate(path)}\": {IpvlanCni.Interop.ErrnoInfo.Describe((int)e.Errno)}");
        }
    }

    public Snapshot Read(IReadOnlyList<Read> reads, DateTimeOffset deadline)
    {
        var txn = new TxnRequest();
        foreach (var r in reads)
            txn.Success.Add(new RequestOp { RequestRange = Range(r) });
        var reply = Call(deadline, (c, d) => c.Transaction(txn, _metadata, d));
        return new Snapshot(reply.Header.Revision, reads, Found(reply));
    }

    public TxnOutcome Commit(Txn txn, DateTimeOffset deadline)
    {
        var request = new TxnRequest();
        foreach (var c in txn.Compares)
            request.Compare.Add(c.OnCreate
                ? new Etcdserverpb.Compare { Key = Bytes(c.Key), Target = Etcdserverpb.Compare.Types.CompareTarget.Create, Result = Etcdserverpb.Compare.Types.CompareResult.Equal, CreateRevision = c.Revision }
                : new Etcdserverpb.Compare { Key = Bytes(c.Key), Target = Etcdserverpb.Compare.Types.CompareTarget.Mod, Result = Etcdserverpb.Compare.Types.CompareResult.Equal, ModRevision = c.Revision });
        foreach (var w in txn.Writes)
            request.Success.Add(w.Value is null
                ? new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = Bytes(w.Key) } }
                : new RequestOp { RequestPut = new PutRequest { Key = Bytes(w.Key), Value = Bytes(w.Value), Lease = w.Lease } });
        foreach (var r in txn.ElseReads)
            request.Failure.Add(new RequestOp { RequestRange = Range(r) });
        // A commit is sent once: after it left, a timeout is "unknown", and only a read can tell.
        var reply = Call(deadline, (c, d) => c.Transaction(request, _metadata, d), resend: false);
        return new TxnOutcome(reply.Succeeded, reply.Header.Revision, reply.Succeeded ? [] : Found(reply));
    }

    public long GrantLease(int seconds, DateTimeOffset deadline) =>
        Call(deadline, (c, d) => c.LeaseGrant(new LeaseGrantRequest { TTL = seconds }, _metadata, d)).ID;

    static RangeRequest Range(Read r) => r.End is null
        ? new RangeRequest { Key = Bytes(r.Key) }
        : new RangeRequest { Key = Bytes(r.Key), RangeEnd = Bytes(r.End) };

    static ByteString Bytes(string s) => ByteString.CopyFromUtf8(s);

    static List<KeyValue> Found(TxnResponse reply) =>
        [.. reply.Responses.Where(r => r.ResponseCase == ResponseOp.ResponseOneofCase.ResponseRange)
            .SelectMany(r => r.ResponseRange.Kvs)
            .Select(kv => new KeyValue(kv.Key.ToStringUtf8(), kv.Value.ToStringUtf8(), kv.CreateRevision, kv.ModRevision))];

    /// <summary>
    /// Calls a member, moving to the next one when it is unreachable or slow; gives up at the deadline. With
    /// <paramref name="resend"/> false, a call that may have reached a member is not sent again.
    /// </summary>
    T Call<T>(DateTimeOffset deadline, Func<EtcdClient, DateTime, T> call, bool resend = true)
    {
        RpcException? last = null;
        string? tlsProblem = null;
        int tlsRefusals = 0, reauthentications = 0;
        for (int tried = 0; ; tried++)
        {
            // Every member refused TLS: a certificate is wrong, and no retry within the deadline mends that.
            if (tlsRefusals >= _members.Length)
                throw new StoreRefusedException($"every etcd member refused TLS: {tlsProblem}", last);
            var left = deadline - DateTimeOffset.UtcNow;
            // Every member refused (an election, a restart): pause a little before the next round, within the deadline.
            if (tried > 0 && tried % _members.Length == 0 && left > TimeSpan.Zero)
            {
                Thread.Sleep(TimeSpan.FromMilliseconds(Math.Min(100, left.TotalMilliseconds)));
                left = deadline - DateTimeOffset.UtcNow;
            }
            if (left <= TimeSpan.Zero)
                break;
            int index = Volatile.Read(ref _current) % _members.Length;
            var member = _members[index];
            var attempt = left < AttemptTimeout ? left : AttemptTimeout;
            bool authenticating = false;
            try
            {
                // Authenticated on first use, not in the constructor: the agent keeps this store, and a failure here
                // (etcd down, a wrong password since fixed) must not stick to it.
                if (_config.Username is { } user && _metadata is null)
                {
                    authenticating = true;
                    var reply = member.Client.Authenticate(new AuthenticateRequest { Name = user, Password = _config.Password! }, null, DateTime.UtcNow + attempt);
                    _metadata = new Metadata { { "token", reply.Token } };
                    authenticating = false;
                }
                return call(member.Client, DateTime.UtcNow + attempt);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unauthenticated && !authenticating && _config.Username is not null && reauthentications++ < 2)
            {
                // etcd forgets an idle token (--auth-token-ttl): it refused the call before applying it, so ask for a new one and send again.
                _metadata = null;
            }
            catch (RpcException e) when (authenticating && e.StatusCode is StatusCode.InvalidArgument or StatusCode.FailedPrecondition or StatusCode.PermissionDenied)
            {
                throw new StoreRefusedException($"etcd {member.Endpoint} refused the user name and password of ipam.etcdUsername and ipam.etcdPassword ({e.StatusCode}: {e.Status.Detail})", e);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Cancelled or StatusCode.Internal or StatusCode.Unknown)
            {
                last = e;
                Interlocked.CompareExchange(ref _current, index + 1, index);
                if (TlsProblem(e) is { } problem)
                {
                    // Refused in the handshake: nothing was sent, so nothing of a commit can have applied.
                    tlsProblem = $"{member.Endpoint}: {problem}";
                    tlsRefusals++;
                    continue;
                }
                // Refused before sending (connection refused) is safe to send elsewhere; anything later is uncertain.
                if (!resend && !(e.StatusCode == StatusCode.Unavailable && e.Status.DebugException is HttpRequestException))
                    throw new StoreUnavailableException($"etcd {member.Endpoint}: {e.Status.Detail} (the commit may or may not have applied)", e);
            }
            catch (RpcException e)
            {
                throw new StoreUnavailableException($"etcd {member.Endpoint} refused the request: {e.StatusCode} {e.Status.Detail}", e);
            }
        }
        throw new StoreUnavailableException($"no etcd member of {string.Join(", ", _members.Select(m => m.Endpoint))} answered in time" +
            (last is null ? "" : $" (last: {last.StatusCode} {last.Status.Detail})"), last);
    }

    /// <summary>
    /// What failed in a TLS handshake, in words naming the key to fix, or null when the failure was not TLS's. By the
    /// exception types (their messages are resource keys in this build): our validation refused the member's
    /// certificate (AuthenticationException), or the member refused ours (an alert: the TLS stream fails after the
    /// handshake, before any HTTP/2 frame).
    /// </summary>
    string? TlsProblem(RpcException e)
    {
        bool authentication = false, afterHandshake = false;
        for (Exception? x = e.Status.DebugException; x is not null; x = x.InnerException)
        {
            authentication |= x is AuthenticationException;
            afterHandshake |= x is CryptographicException || (x is ObjectDisposedException d && d.ObjectName?.EndsWith(nameof(SslStream), StringComparison.Ordinal) == true);
        }
        if (authentication)
            return _serverCertificateProblem ?? (_config.CaFile is null
                ? "the member's certificate is not signed by a CA this system trusts (set ipam.etcdCaFile to the CA that signed it)"
                : $"the member's certificate is not signed by the CA of ipam.etcdCaFile ({_config.CaFile})");
        if (afterHandshake)
            return _config.CertFile is null
                ? "the member asks for a client certificate and none is set (ipam.etcdCertFile and ipam.etcdKeyFile)"
                : $"the member refused the client certificate of ipam.etcdCertFile ({_config.CertFile}): is it signed by a CA the member trusts (its --trusted-ca-file), and for client authentication?";
        return null;
    }

    public void Dispose()
    {
        foreach (var m in _members)
        {
            m.Client.Dispose();
            m.Channel.Dispose();
        }
    }
}
