namespace Billing.Cluster.Tests.Infrastructure;

/// <summary>Where the repository and the built programs are: each project's own output folder.</summary>
public static class Artifacts
{
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>Release or Debug: the configuration this test assembly was built in.</summary>
    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}") ? "Debug" : "Release";

    public static string SiloDll => Output("Silo", "Billing.Silo.dll");

    public static string AgentSiloDll => Output(Path.Combine("tests", "Billing.AgentSilo"), "Billing.AgentSilo.dll");

    /// <summary>The HTTP gateway; a test that needs it fails when it is not built (never quietly runs without it).</summary>
    public static string GatewayDll => Output("Client", "Billing.Client.dll");

    public static string RunScript => Path.Combine(RepositoryRoot, "run.sh");

    private static string Output(string project, string dll) => Required(RepositoryRoot, project, dll);

    /// <summary>The built <paramref name="dll"/> of <paramref name="project"/> under <paramref name="root"/>, or a FileNotFoundException.</summary>
    public static string Required(string root, string project, string dll)
    {
        var path = Path.Combine(root, project, "bin", Configuration, "net10.0", dll);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} is not built: dotnet build Billing.sln -c {Configuration}", path);
        return path;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Billing.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException($"Billing.sln not found above {AppContext.BaseDirectory}.");
    }
}
