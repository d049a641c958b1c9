using System.Text.Json;
using System.Text.Json.Nodes;
using IpvlanCni.Network;

namespace IpvlanCni.Scenarios;

/// <summary>One plugin run: exit code, stdout (result or error JSON), stderr.</summary>
public sealed record CniOutcome(int ExitCode, string StdOut, string StdErr)
{
    public bool Succeeded => ExitCode == 0;
    public JsonElement Json => JsonDocument.Parse(StdOut).RootElement;
    /// <summary>The spec error's code, null on success.</summary>
    public int? ErrorCode => ExitCode != 0 && StdOut.Length > 0 && Json.TryGetProperty("code", out var code) ? code.GetInt32() : null;

    /// <summary>Pod addresses of an ADD result ("10.1.0.5/24").</summary>
    public IReadOnlyList<IpPrefix> Addresses => Json.TryGetProperty("ips", out var ips)
        ? [.. ips.EnumerateArray().Select(ip => IpPrefix.Parse(ip.GetProperty("address").GetString()!))]
        : [];

    /// <summary>Throws with the plugin's output unless it succeeded; returns this for chaining.</summary>
    public CniOutcome OrThrow(string what)
    {
        if (!Succeeded)
            throw new InvalidOperationException($"{what} failed: {this}");
        return this;
    }

    public override string ToString() => $"exit {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}";
}

/// <summary>
/// Calls the published plugin exactly as a container runtime does: a process in the node's namespace, the CNI_*
/// variables in an otherwise empty environment, the network configuration on stdin.
/// </summary>
public sealed class CniRuntime(NetNamespace node)
{
    static readonly Lazy<string> Binary = new(Locate);

    /// <summary>artifacts/cni/bin/ipvlan-cni as `make publish` leaves it; IPVLANCNI_PLUGIN names it in the sandbox.</summary>
    public static string PluginPath => Binary.Value;

    public CniOutcome Add(JsonNode config, Pod pod, string containerId, IReadOnlyDictionary<string, string>? env = null) =>
        Run("ADD", config, containerId, pod.Path, env);

    public CniOutcome Del(JsonNode config, Pod pod, string containerId) => Run("DEL", config, containerId, pod.Path);

    /// <summary>CHECK with prevResult set to the ADD's result, as a runtime does.</summary>
    public CniOutcome Check(JsonNode config, Pod pod, string containerId, CniOutcome added)
    {
        var withPrevious = config.DeepClone();
        withPrevious["prevResult"] = JsonNode.Parse(added.StdOut);
        return Run("CHECK", withPrevious, containerId, pod.Path);
    }

    /// <summary>GC keeping only these containers' eth0 attachments.</summary>
    public CniOutcome Gc(JsonNode config, params string[] keepContainerIds)
    {
        var withList = config.DeepClone();
        withList["cni.dev/valid-attachments"] = new JsonArray([.. keepContainerIds
            .Select(id => (JsonNode)new JsonObject { ["containerID"] = id, ["ifname"] = "eth0" })]);
        return Run("GC", withList, "", "");
    }

    public CniOutcome Run(string command, JsonNode config, string containerId, string netnsPath,
        IReadOnlyDictionary<string, string>? env = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = containerId,
            ["CNI_NETNS"] = netnsPath,
            ["CNI_IFNAME"] = command == "GC" ? "" : "eth0",
            ["CNI_PATH"] = Path.GetDirectoryName(PluginPath)!,
            ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin",
        };
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
            environment[key] = value;
        var result = Programs.Run(node, PluginPath, [], environment, config.ToJsonString(), inheritEnvironment: false);
        return new CniOutcome(result.ExitCode, result.StdOut, result.StdErr);
    }

    static string Locate()
    {
        if (Environment.GetEnvironmentVariable("IPVLANCNI_PLUGIN") is { Length: > 0 } configured)
            return File.Exists(configured) ? configured : throw new FileNotFoundException($"IPVLANCNI_PLUGIN={configured} does not exist; run make");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "artifacts", "cni", "bin", "ipvlan-cni");
            if (File.Exists(candidate))
                return candidate;
        }
        throw new FileNotFoundException("artifacts/cni/bin/ipvlan-cni not found: run make (or make publish) first");
    }
}
