using System.Net;
using System.Text;
using System.Text.Json;
using IpvlanCni.Network;

namespace IpvlanCni.Cni.Tests;

/// <summary>Records what the dispatcher hands it; returns or throws what the test scripts.</summary>
sealed class FakePlugin : ICniPlugin
{
    public List<CniRequest> Requests { get; } = [];
    public CniResult? Result { get; set; } = new();
    public Exception? Throw { get; set; }

    public CniResult Add(CniRequest request) { Record(request); return Result!; }
    public void Delete(CniRequest request) => Record(request);
    public void Check(CniRequest request) => Record(request);
    public void Status(CniRequest request) => Record(request);
    public void GarbageCollect(CniRequest request) => Record(request);

    void Record(CniRequest request)
    {
        Requests.Add(request);
        if (Throw is not null)
            throw Throw;
    }
}

sealed record Outcome(int ExitCode, string Stdout)
{
    public JsonElement Json => JsonDocument.Parse(Stdout).RootElement;
    public int ErrorCode => Json.GetProperty("code").GetInt32();
    public string Message => Json.GetProperty("msg").GetString()!;
}

static class Cni
{
    public static Dictionary<string, string> Env(string command) => new()
    {
        ["CNI_COMMAND"] = command,
        ["CNI_CONTAINERID"] = "c0ffee",
        ["CNI_NETNS"] = "/var/run/netns/test",
        ["CNI_IFNAME"] = "eth0",
        ["CNI_PATH"] = "/opt/cni/bin:/usr/lib/cni",
    };

    public static string Config(string version = "1.1.0", string extra = "") =>
        $$"""{"cniVersion":"{{version}}","name":"net1","type":"ipvlan"{{extra}}}""";

    public static Outcome Run(IReadOnlyDictionary<string, string> env, string stdin, ICniPlugin? plugin = null, CniLog? log = null) =>
        Run(env, Encoding.UTF8.GetBytes(stdin), plugin, log);

    public static Outcome Run(IReadOnlyDictionary<string, string> env, byte[] stdin, ICniPlugin? plugin = null, CniLog? log = null)
    {
        var stdout = new MemoryStream();
        int exit = CniDispatcher.Run(plugin ?? new FakePlugin(), env, new MemoryStream(stdin), stdout, log);
        return new Outcome(exit, Encoding.UTF8.GetString(stdout.ToArray()));
    }

    public static Outcome Run(string command, string stdin, ICniPlugin? plugin = null) => Run(Env(command), stdin, plugin);

    /// <summary>A result with every field set, for shape tests.</summary>
    public static CniResult FullResult() => new()
    {
        Interfaces =
        [
            new CniInterface("ipvl0") { Mac = "02:42:ac:11:00:02", Mtu = 1500 },
            new CniInterface("eth0") { Mac = "02:42:ac:11:00:03", Mtu = 1500, Sandbox = "/var/run/netns/test", SocketPath = "/run/s.sock", PciId = "0000:00:1f.6" },
        ],
        Ips =
        [
            new CniIpConfig(IpPrefix.Parse("10.1.1.5/24")) { Gateway = IPAddress.Parse("10.1.1.1"), Interface = 1 },
            new CniIpConfig(IpPrefix.Parse("fd00::5/64")) { Interface = 1 },
        ],
        Routes =
        [
            new CniRoute(IpPrefix.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse("10.1.1.1"), Mtu = 1400, AdvMss = 1360, Priority = 10, Table = 100, Scope = 0 },
            new CniRoute(IpPrefix.Parse("fd01::/64")),
        ],
        Dns = new CniDns { Nameservers = ["10.1.1.53"], Domain = "example.org", Search = ["example.org"], Options = ["ndots:2"] },
    };
}
