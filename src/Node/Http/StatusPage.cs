using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace MoEMesh.Node.Http;

/// <summary>
/// The status page at <c>/</c>: plain HTML, CSS and a small script embedded in the binary (no CDN, nothing
/// fetched from elsewhere), which reads the JSON endpoints and refreshes itself. The content security
/// policy lets the page load only its own files and talk only to its own node.
/// </summary>
internal static class StatusPage
{
    private const string Policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly (string Path, string Resource, string ContentType)[] Files =
    [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/status.css", "status.css", "text/css; charset=utf-8"),
        ("/status.js", "status.js", "text/javascript; charset=utf-8"),
        ("/favicon.svg", "favicon.svg", "image/svg+xml"),
    ];

    public static void MapStatusPage(this WebApplication app)
    {
        foreach (var (path, resource, contentType) in Files)
        {
            var bytes = Read(resource);
            app.MapMethods(path, HttpErrors.Read, (HttpContext http) =>
            {
                http.Response.Headers.ContentSecurityPolicy = Policy;
                http.Response.Headers.XContentTypeOptions = "nosniff";
                http.Response.Headers.CacheControl = "no-cache";
                return Results.Bytes(bytes, contentType);
            });
        }
    }

    private static byte[] Read(string resource)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("StatusPage/" + resource)
            ?? throw new InvalidOperationException($"The status page's {resource} is not embedded in the build.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
