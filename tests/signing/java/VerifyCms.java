// Independent CMS check with Bouncy Castle (Debian libbcprov-java / libbcpkix-java): verifies every
// SignerInfo of a detached CMS SignedData over the given content. SM2 uses BC's default ID.
// Run as a single-file source program: java -cp bcprov.jar:bcpkix.jar:bcutil.jar VerifyCms.java CMS CONTENT
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.Security;
import java.util.Collection;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.util.Store;

public class VerifyCms {
    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        byte[] cms = Files.readAllBytes(Paths.get(args[0]));
        byte[] content = Files.readAllBytes(Paths.get(args[1]));
        CMSSignedData signed = new CMSSignedData(new CMSProcessableByteArray(content), cms);
        Store<X509CertificateHolder> certs = signed.getCertificates();
        boolean all = true;
        int count = 0;
        for (SignerInformation signer : signed.getSignerInfos().getSigners()) {
            @SuppressWarnings("unchecked")
            Collection<X509CertificateHolder> matches = certs.getMatches(signer.getSID());
            boolean ok;
            try {
                ok = signer.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(matches.iterator().next()));
            } catch (Exception e) {
                System.out.println("error: " + e);
                ok = false;
            }
            System.out.println((ok ? "VALID " : "INVALID ") + signer.getDigestAlgOID() + " " + signer.getEncryptionAlgOID());
            all &= ok;
            count++;
        }
        System.exit(all && count > 0 ? 0 : 1);
    }
}
