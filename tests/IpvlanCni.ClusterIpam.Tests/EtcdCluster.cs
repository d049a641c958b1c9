using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using IpvlanCni.ClusterIpam;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>
/// Debian's etcd-server started by the test itself: one or three members on loopback ports, each with a throw-away
/// data folder, stopped (and paused, killed, restarted) by the PID this fixture recorded. No etcd -> the test fails.
/// </summary>
public sealed partial class EtcdCluster : IDisposable
{
    public const string Binary = "/usr/bin/etcd";

    public sealed class Member
    {
        public required string Name { get; init; }
        public required int ClientPort { get; init; }
        public required int PeerPort { get; init; }
        public required string DataDir { get; init; }
        public Process? Process { get; set; }
        public required string Scheme { get; init; }
        public string ClientUrl => $"{Scheme}://127.0.0.1:{ClientPort}";
        public string PeerUrl => $"http://127.0.0.1:{PeerPort}";
        public bool Running => Process is { HasExited: false };
    }

    readonly string _root;
    readonly string[] _extraArgs;
    public IReadOnlyList<Member> Members { get; }

    /// <summary>With <paramref name="tls"/>, clients speak https and must show a certificate its CA signed.</summary>
    /// <param name="extraArgs">more etcd flags for every member (e.g. a short --auth-token-ttl).</param>
    public EtcdCluster(int size, TestPki? tls = null, params string[] extraArgs)
    {
        Tls = tls;
        _extraArgs = extraArgs;
        if (!File.Exists(Binary))
            throw new InvalidOperationException($"{Binary} is missing: `make deps` installs etcd-server");
        _root = Directory.CreateTempSubdirectory("ipvlan-cni-etcd-").FullName;
        Members = [.. Enumerable.Range(0, size).Select(i => new Member
        {
            Name = $"m{i}",
            ClientPort = FreePort(),
            PeerPort = FreePort(),
            DataDir = Path.Combine(_root, $"m{i}"),
            Scheme = tls is null ? "http" : "https",
        })];
        foreach (var m in Members)
            Start(m, "new");
        WaitHealthy(TimeSpan.FromSeconds(30));
    }

    public TestPki? Tls { get; }

    /// <summary>The ipam keys a client of this cluster needs besides the endpoints (the TLS files), as JSON members.</summary>
    public string ClientKeys => Tls is { } t
        ? $"\"etcdCaFile\":\"{t.CaFile}\",\"etcdCertFile\":\"{t.ClientCertFile}\",\"etcdKeyFile\":\"{t.ClientKeyFile}\""
        : "";

    public IEnumerable<string> Endpoints => Members.Select(m => m.ClientUrl);
    public string EndpointsJson => string.Join(",", Endpoints.Select(e => $"\"{e}\""));

    string InitialCluster => string.Join(",", Members.Select(m => $"{m.Name}={m.PeerUrl}"));

    public void Start(Member m, string state = "existing")
    {
        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            "--name", m.Name, "--data-dir", m.DataDir,
            "--listen-client-urls", m.ClientUrl, "--advertise-client-urls", m.ClientUrl,
            "--listen-peer-urls", m.PeerUrl, "--initial-advertise-peer-urls", m.PeerUrl,
            "--initial-cluster", InitialCluster, "--initial-cluster-state", state, "--initial-cluster-token", Path.GetFileName(_root),
            // Fast elections: a killed leader is replaced in about a second.
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--logger", "zap", "--log-level", "error",
        })
            psi.ArgumentList.Add(a);
        foreach (var a in _extraArgs)
            psi.ArgumentList.Add(a);
        if (Tls is { } tls)
            foreach (var a in new[] { "--cert-file", tls.ServerCertFile, "--key-file", tls.ServerKeyFile, "--trusted-ca-file", tls.CaFile, "--client-cert-auth" })
                psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, e) => { if (e.Data is { } line) lock (_log) { _log.Add($"{m.Name}: {line}"); if (_log.Count > 200) _log.RemoveAt(0); } };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        m.Process = p;
    }

    readonly List<string> _log = [];
    public string Log { get { lock (_log) return string.Join("\n", _log); } }

    /// <summary>SIGKILL by the recorded PID.</summary>
    public void Kill(Member m)
    {
        if (m.Process is { } p && !p.HasExited)
        {
            p.Kill();
            p.WaitForExit(5000);
        }
    }

    public void Restart(Member m)
    {
        Kill(m);
        Start(m);
    }

    public void Pause(Member m) => Signal(m, 19);   // SIGSTOP
    public void Resume(Member m) => Signal(m, 18);  // SIGCONT

    static void Signal(Member m, int signal)
    {
        if (m.Process is { HasExited: false } p && kill(p.Id, signal) != 0)
            throw new InvalidOperationException($"kill({p.Id}, {signal}) failed");
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    /// <summary>The member that leads now (asked of each running member), or null.</summary>
    public Member? Leader()
    {
        foreach (var m in Members.Where(m => m.Running))
        {
            try
            {
                using var client = new dotnet_etcd.EtcdClient(Grpc.Net.Client.GrpcChannel.ForAddress(m.ClientUrl).CreateCallInvoker());
                var status = client.Status(new Etcdserverpb.StatusRequest(), null, DateTime.UtcNow.AddSeconds(2));
                if (status.Leader == status.Header.MemberId)
                    return m;
            }
            catch (Grpc.Core.RpcException)
            {
            }
        }
        return null;
    }

    /// <summary>
    /// etcd's MoveLeader (the API `etcdctl move-leader` calls), sent to the leader: hands leadership to
    /// <paramref name="target"/> without an election timeout. False when the cluster refused (no leader, target behind).
    /// </summary>
    public bool MoveLeader(Member leader, Member target)
    {
        try
        {
            using var to = new dotnet_etcd.EtcdClient(Grpc.Net.Client.GrpcChannel.ForAddress(target.ClientUrl).CreateCallInvoker());
            ulong targetId = to.Status(new Etcdserverpb.StatusRequest(), null, DateTime.UtcNow.AddSeconds(2)).Header.MemberId;
            using var from = new dotnet_etcd.EtcdClient(Grpc.Net.Client.GrpcChannel.ForAddress(leader.ClientUrl).CreateCallInvoker());
            from.MoveLeader(new Etcdserverpb.MoveLeaderRequest { TargetID = targetId }, null, DateTime.UtcNow.AddSeconds(5));
            return true;
        }
        catch (Grpc.Core.RpcException)
        {
            return false;
        }
    }

    /// <summary>Until a quorum answers a linearizable read.</summary>
    public void WaitHealthy(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        var config = TestConfig.Parse("probe", """[[{"subnet":"10.255.0.0/24"}]]""", ClientKeys, EndpointsJson);
        using var store = new EtcdKvStore(config);
        while (true)
        {
            try
            {
                store.Read([Read.One("/probe")], DateTimeOffset.UtcNow.AddSeconds(2));
                return;
            }
            catch (StoreUnavailableException) when (DateTime.UtcNow < until)
            {
                if (Members.All(m => !m.Running))
                    throw new InvalidOperationException($"etcd exited:\n{Log}");
                Thread.Sleep(100);
            }
            catch (StoreUnavailableException e)
            {
                throw new InvalidOperationException($"etcd not healthy within {timeout}: {e.Message}\n{Log}");
            }
        }
    }

    static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        foreach (var m in Members)
        {
            Resume(m);
            Kill(m);
            m.Process?.Dispose();
        }
        Directory.Delete(_root, true);
    }
}
