using IpvlanCni.Cni;

namespace IpvlanCni.Ipam;

/// <summary>host-local's resolvConf option: nameserver, domain, search and options lines become the result's dns.</summary>
public static class ResolvConf
{
    public static CniDns Parse(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CniException(CniErrorCode.IoFailure, $"ipam.resolvConf: cannot read {path}: {e.Message}", inner: e);
        }
        return ParseLines(lines);
    }

    public static CniDns ParseLines(IEnumerable<string> lines)
    {
        var dns = new CniDns();
        string? domain = null;
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
                continue;
            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2)
                continue;
            switch (fields[0])
            {
                case "nameserver": dns.Nameservers.Add(fields[1]); break;
                case "domain": domain = fields[1]; break;
                case "search": dns.Search.AddRange(fields[1..]); break;
                case "options": dns.Options.AddRange(fields[1..]); break;
            }
        }
        return dns with { Domain = domain };
    }
}
