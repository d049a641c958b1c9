using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.Network;

namespace IpvlanCni.Ipam;

/// <summary>An IPAM plugin executed from CNI_PATH with our environment (CNI_COMMAND set) and our stdin, as libcni does.</summary>
public sealed class DelegatingIpam : IIpam
{
    public string Type { get; }

    public DelegatingIpam(string type)
    {
        // The type names an executable in CNI_PATH, never a path.
        if (type.Length == 0 || type is "." or ".." || type.Contains('/') || type.Contains('\0'))
            throw IpamJson.Invalid("ipam.type", $"\"{type}\" is not a plugin name");
        Type = type;
    }

    public CniResult Allocate(CniRequest request) =>
        ResultParser.Parse(Run(request, "ADD"), $"IPAM plugin {Type}");

    public void Release(CniRequest request) => Run(request, "DEL");

    public void Check(CniRequest request) => Run(request, "CHECK");

    public void Status(CniRequest request) => Run(request, "STATUS");

    /// <summary>The config already carries cni.dev/valid-attachments; the plugin reads them from stdin.</summary>
    public void GarbageCollect(CniRequest request, IReadOnlyList<GcAttachment> validAttachments) => Run(request, "GC");

    public string FindPlugin(IReadOnlyList<string> paths)
    {
        foreach (var dir in paths)
        {
            if (dir.Length == 0)
                continue;
            string candidate = Path.Join(dir, Type);
            if (OperatingSystem.IsLinux() && File.Exists(candidate) && (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
                return candidate;
        }
        throw IpamJson.Invalid("ipam.type", $"failed to find plugin \"{Type}\" in path [{string.Join(" ", paths)}]");
    }

    byte[] Run(CniRequest request, string command)
    {
        string plugin = FindPlugin(request.PluginPaths);
        var start = new ProcessStartInfo(plugin)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment.Clear();
        foreach (var (k, v) in request.Environment)
            start.Environment[k] = v;
        start.Environment["CNI_COMMAND"] = command;

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            throw new CniException(CniErrorCode.IpamPluginFailed, $"IPAM plugin {plugin}: cannot start: {e.Message}", inner: e);
        }
        var stderr = process.StandardError.ReadToEndAsync();
        using var stdout = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        try
        {
            process.StandardInput.BaseStream.Write(request.ConfigBytes);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The plugin exited without reading stdin; its exit status and output tell why.
        }
        copy.GetAwaiter().GetResult();
        process.WaitForExit();
        var output = stdout.ToArray();
        if (process.ExitCode != 0)
        {
            if (ResultParser.TryParseError(output) is { } error)
                throw error;
            throw new CniException(CniErrorCode.IpamPluginFailed,
                $"IPAM plugin {plugin} {command} failed with exit status {process.ExitCode}", stderr.GetAwaiter().GetResult().Trim());
        }
        return output;
    }
}

/// <summary>Reads a plugin's result (0.1.0 to 1.1.0 shapes) or error JSON into our types.</summary>
public static class ResultParser
{
    public static CniResult Parse(byte[] json, string source)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new CniException(CniErrorCode.DecodeFailure, $"{source}: result is not JSON: {e.Message}", inner: e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new CniException(CniErrorCode.DecodeFailure, $"{source}: result is not a JSON object");
            if (root.TryGetProperty("code", out _))
                throw TryParseError(json)!;
            try
            {
                return ParseResult(root);
            }
            catch (CniException e)
            {
                throw new CniException(e.Code, $"{source}: result {e.Message}", e.Details, e);
            }
        }
    }

    static CniResult ParseResult(JsonElement root)
    {
        var result = new CniResult
        {
            CniVersion = IpamJson.GetString(root, "cniVersion", "") ?? CniVersions.Latest,
            Routes = IpamJson.ParseRoutes(root, ""),
            Dns = IpamJson.GetObject(root, "dns", "") is { } dns ? IpamJson.ParseDns(dns, "dns") : new CniDns(),
        };
        int i = 0;
        foreach (var ip in IpamJson.GetArray(root, "ips", ""))
        {
            string p = $"ips[{i++}]";
            if (ip.ValueKind != JsonValueKind.Object)
                throw IpamJson.WrongType(p, "an object", ip);
            result.Ips.Add(IpConfig(ip, "address", p));
        }
        // 0.1.0/0.2.0: ip4 and ip6 objects, each with an address, a gateway and routes.
        foreach (var family in (string[])["ip4", "ip6"])
        {
            if (IpamJson.GetObject(root, family, "") is not { } legacy)
                continue;
            result.Ips.Add(IpConfig(legacy, "ip", family));
            result.Routes.AddRange(IpamJson.ParseRoutes(legacy, family));
        }
        return result;
    }

    static CniIpConfig IpConfig(JsonElement obj, string addressKey, string path)
    {
        var address = IpamJson.GetString(obj, addressKey, path) ?? throw IpamJson.Invalid($"{path}.{addressKey}", "missing");
        var gw = IpamJson.GetString(obj, "gateway", path);
        return new CniIpConfig(IpamJson.ParseCidr(address, $"{path}.{addressKey}"))
        {
            Gateway = gw is null ? null : IpamJson.ParseIp(gw, $"{path}.gateway"),
        };
    }

    /// <summary>The spec's error JSON ({code, msg, details}) as an exception; null when the bytes are not one.</summary>
    public static CniException? TryParseError(byte[] json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("code", out var code) || !code.TryGetInt32(out int c))
                return null;
            string msg = root.TryGetProperty("msg", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : "";
            string? details = root.TryGetProperty("details", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
            return new CniException(c, msg, details);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
