using System.Text;
using System.Text.Json;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam.Tests;

/// <summary>Builds requests the way the dispatcher would, from a network config JSON text.</summary>
static class TestNet
{
    public static CniRequest Request(string config, string id = "c1", string ifName = "eth0",
        CniCommand command = CniCommand.Add, IReadOnlyList<KeyValuePair<string, string>>? args = null, CniResult? prevResult = null)
    {
        using var doc = JsonDocument.Parse(config);
        var root = doc.RootElement;
        var request = new CniRequest
        {
            Command = command,
            NetnsPath = "/proc/self/ns/net",
            Args = args ?? [],
            ConfigBytes = Encoding.UTF8.GetBytes(config),
            Config = new NetworkConfig
            {
                CniVersion = root.GetProperty("cniVersion").GetString()!,
                Name = NetworkName.Parse(root.GetProperty("name").GetString(), "name"),
                Type = root.GetProperty("type").GetString()!,
                PrevResult = prevResult,
            },
        };
        return command is CniCommand.Add or CniCommand.Del or CniCommand.Check
            ? request with { ContainerId = ContainerId.Parse(id, "CNI_CONTAINERID"), IfName = InterfaceName.Parse(ifName, "CNI_IFNAME") }
            : request;
    }

    public static IIpam Create(CniRequest request)
    {
        using var doc = JsonDocument.Parse(request.ConfigBytes);
        return IpamFactory.Create(doc.RootElement.GetProperty("ipam"), request);
    }

    /// <summary>A network config with the given ipam object (JSON text).</summary>
    public static string Config(string ipam, string name = "net1", string extra = "", string version = "1.0.0") =>
        $$"""{"cniVersion":"{{version}}","name":"{{name}}","type":"ipvlan"{{extra}},"ipam":{{ipam}}}""";

    public static string HostLocal(string dataDir, string ranges, string extra = "") =>
        $$"""{"type":"host-local","dataDir":"{{dataDir}}","ranges":{{ranges}}{{extra}}}""";
}

/// <summary>A temporary directory removed after the test.</summary>
sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("ipam-test-").FullName;
    public void Dispose() => Directory.Delete(Path, recursive: true);
}
